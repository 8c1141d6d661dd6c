"""placeholder"""


def add_commands(sub):
    del sub
