"""Geometry: rotations (Euler angles, quaternions, axis-angle, the 6-D representation),
coordinate changes, a kinematic chain, projections, areas, angles and distances.

The torch side is what vision and robotics code writes (pytorch3d's ``quaternion_to_matrix``
and ``rotation_6d_to_matrix`` formulas, ``torch.linalg.matrix_exp`` of a skew matrix,
``torch.atan2``, ``torch.hypot``). Rotations from quaternions and the 6-D representation
normalise their input, so the domain keeps the quaternion (and the 6-D frame) away from 0 and
from degenerate directions; angle functions keep off their branch cuts and the poles where
``atan2`` is undefined.
"""

from __future__ import annotations

import sympy
import torch
import torch.nn.functional as F
from verijac_cases._blocks import sq_norm

from verijac import Case, KnownPoint, array, scalar

_FAMILY = "geometry"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output"})
_ARRAY = frozenset({_FAMILY, "smooth"})
_R = sympy.Rational
_PI = sympy.pi
_S2 = sympy.sqrt(2)

_RZ90 = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
_I3 = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def _rows(m: sympy.Matrix) -> sympy.Array:
    return sympy.Array(m.tolist())


def _stack3(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def _cross(u: list[sympy.Expr], v: list[sympy.Expr]) -> list[sympy.Expr]:
    return [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]]


def _dot(u: list[sympy.Expr], v: list[sympy.Expr]) -> sympy.Expr:
    return sympy.Add(*[a * b for a, b in zip(u, v, strict=True)])


# -- Euler angles ---------------------------------------------------------------------------
ang = array("angles", (3,))


def _rz(t: sympy.Expr) -> sympy.Matrix:
    return sympy.Matrix(
        [[sympy.cos(t), -sympy.sin(t), 0], [sympy.sin(t), sympy.cos(t), 0], [0, 0, 1]]
    )


def _ry(t: sympy.Expr) -> sympy.Matrix:
    return sympy.Matrix(
        [[sympy.cos(t), 0, sympy.sin(t)], [0, 1, 0], [-sympy.sin(t), 0, sympy.cos(t)]]
    )


def _rx(t: sympy.Expr) -> sympy.Matrix:
    return sympy.Matrix(
        [[1, 0, 0], [0, sympy.cos(t), -sympy.sin(t)], [0, sympy.sin(t), sympy.cos(t)]]
    )


def _euler_torch(a: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(a), torch.sin(a)
    one, zero = torch.ones_like(a[..., 0]), torch.zeros_like(a[..., 0])
    rz = _stack3([[c[..., 0], -s[..., 0], zero], [s[..., 0], c[..., 0], zero], [zero, zero, one]])
    ry = _stack3([[c[..., 1], zero, s[..., 1]], [zero, one, zero], [-s[..., 1], zero, c[..., 1]]])
    rx = _stack3([[one, zero, zero], [zero, c[..., 2], -s[..., 2]], [zero, s[..., 2], c[..., 2]]])
    return rz @ ry @ rx


geometry_euler_zyx = Case(
    "geometry_euler_zyx",
    inputs={"angles": ang},
    outputs=_rows(_rz(ang[0]) * _ry(ang[1]) * _rx(ang[2])),
    domain={"angles": (-3, 3)},
    known=[
        KnownPoint(at={"angles": [0, 0, 0]}, value=_I3),
        KnownPoint(at={"angles": [_PI / 2, 0, 0]}, value=_RZ90, note="yaw by a quarter turn"),
    ],
    tags=_ARRAY,
    torch_impl=_euler_torch,
    description="the rotation Rz(yaw)·Ry(pitch)·Rx(roll) from ZYX Euler angles "
    "(torch.cos, sin, stack, @)",
)

# -- quaternions ----------------------------------------------------------------------------
qv = array("q", (4,))
_qw, _qx, _qy, _qz = list(qv)
_n = sq_norm(list(qv))
_QR = sympy.Matrix(
    [
        [1 - 2 * (_qy**2 + _qz**2) / _n, 2 * (_qx * _qy - _qz * _qw) / _n, 2 * (_qx * _qz + _qy * _qw) / _n],
        [2 * (_qx * _qy + _qz * _qw) / _n, 1 - 2 * (_qx**2 + _qz**2) / _n, 2 * (_qy * _qz - _qx * _qw) / _n],
        [2 * (_qx * _qz - _qy * _qw) / _n, 2 * (_qy * _qz + _qx * _qw) / _n, 1 - 2 * (_qx**2 + _qy**2) / _n],
    ]
)  # fmt: skip


def _quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    # pytorch3d.transforms.quaternion_to_matrix: 2/|q|² normalises a non-unit quaternion
    r, i, j, k = torch.unbind(q, -1)
    two_s = 2.0 / (q * q).sum(-1)
    o = torch.stack(
        (
            1 - two_s * (j * j + k * k), two_s * (i * j - k * r), two_s * (i * k + j * r),
            two_s * (i * j + k * r), 1 - two_s * (i * i + k * k), two_s * (j * k - i * r),
            two_s * (i * k - j * r), two_s * (j * k + i * r), 1 - two_s * (i * i + j * j),
        ),
        -1,
    )  # fmt: skip
    return o.reshape((*q.shape[:-1], 3, 3))


geometry_quaternion_to_matrix = Case(
    "geometry_quaternion_to_matrix",
    inputs={"q": qv},
    outputs=_rows(_QR),
    domain={"q": (-1, 1)},
    exclude=[_n],  # the direction of q = 0 is undefined
    margin=0.1,
    known=[
        KnownPoint(at={"q": [1, 0, 0, 0]}, value=_I3),
        KnownPoint(
            at={"q": [1, 0, 0, 1]}, value=_RZ90, note="(1 + k)/√2 unnormalised: 90° about z"
        ),
    ],
    tags=_ARRAY,
    torch_impl=_quaternion_to_matrix,
    description="the rotation matrix of a (normalised) quaternion (w, x, y, z), as "
    "pytorch3d.transforms.quaternion_to_matrix computes it",
)

v3 = array("v", (3,))
geometry_quaternion_rotate = Case(
    "geometry_quaternion_rotate",
    inputs={"q": qv, "v": v3},
    outputs=sympy.Array(list(_QR * sympy.Matrix(list(v3)))),
    domain={"q": (-1, 1), "v": (-2, 2)},
    exclude=[_n],
    margin=0.1,
    known=[KnownPoint(at={"q": [1, 0, 0, 1], "v": [1, 0, 0]}, value=[0, 1, 0])],
    tags=_ARRAY,
    torch_impl=lambda q, v: (
        v
        + 2
        * torch.linalg.cross(
            q[..., 1:], torch.linalg.cross(q[..., 1:], v, dim=-1) + q[..., :1] * v, dim=-1
        )
        / (q * q).sum(-1, keepdim=True)
    ),
    description="v rotated by the normalised quaternion q: v + 2u×(u×v + w v)/|q|² "
    "(torch.linalg.cross)",
)

pv = array("p", (4,))
_a = list(qv)
_b = list(pv)
_hamilton = [
    _a[0] * _b[0] - _a[1] * _b[1] - _a[2] * _b[2] - _a[3] * _b[3],
    _a[0] * _b[1] + _a[1] * _b[0] + _a[2] * _b[3] - _a[3] * _b[2],
    _a[0] * _b[2] - _a[1] * _b[3] + _a[2] * _b[0] + _a[3] * _b[1],
    _a[0] * _b[3] + _a[1] * _b[2] - _a[2] * _b[1] + _a[3] * _b[0],
]


def _quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aw, ax, ay, az = torch.unbind(a, -1)
    bw, bx, by, bz = torch.unbind(b, -1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        -1,
    )


geometry_quaternion_multiply = Case(
    "geometry_quaternion_multiply",
    inputs={"q": qv, "p": pv},
    outputs=sympy.Array(_hamilton),
    domain={"q": (-2, 2), "p": (-2, 2)},
    known=[
        KnownPoint(at={"q": [0, 1, 0, 0], "p": [0, 0, 1, 0]}, value=[0, 0, 0, 1], note="i·j = k")
    ],
    tags=_ARRAY | {"polynomial"},
    torch_impl=_quaternion_multiply,
    description="the Hamilton product of two quaternions (torch.unbind, stack)",
)

# -- axis-angle -----------------------------------------------------------------------------
w3 = array("w", (3,))
_W = list(w3)
_theta2 = sq_norm(_W)
_theta = sympy.sqrt(_theta2)
_K = sympy.Matrix([[0, -_W[2], _W[1]], [_W[2], 0, -_W[0]], [-_W[1], _W[0], 0]])
_RODRIGUES = (
    sympy.eye(3) + sympy.sin(_theta) / _theta * _K + (1 - sympy.cos(_theta)) / _theta2 * _K * _K
)


def _skew(w: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(w[..., 0])
    x, y, z = torch.unbind(w, -1)
    return _stack3([[zero, -z, y], [z, zero, -x], [-y, x, zero]])


geometry_axis_angle_to_matrix = Case(
    "geometry_axis_angle_to_matrix",
    inputs={"w": w3},
    outputs=_rows(_RODRIGUES),
    domain={"w": (-2, 2)},
    # Rodrigues' closed form is 0/0 at w = 0 (exp is smooth there): only the expression needs it
    exclude=[_theta2],
    margin=0.05,
    known=[KnownPoint(at={"w": [0, 0, _PI / 2]}, value=_RZ90)],
    tags=_ARRAY,
    torch_impl=lambda w: torch.linalg.matrix_exp(_skew(w)),
    description="the rotation exp([w]×) of an axis-angle vector (Rodrigues' formula) "
    "(torch.linalg.matrix_exp)",
)


def _log_map(R: torch.Tensor) -> torch.Tensor:
    """The axis-angle vector of a rotation with angle in (0, π): θ·v/|v|, v = vee(R − Rᵀ)."""
    v = torch.stack(
        [R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]],
        -1,
    )
    s = torch.linalg.vector_norm(v, dim=-1, keepdim=True)  # 2 sin θ
    c = torch.diagonal(R, dim1=-2, dim2=-1).sum(-1, keepdim=True) - 1  # 2 cos θ
    return torch.atan2(s, c) * v / s


geometry_axis_angle_roundtrip = Case(
    "geometry_axis_angle_roundtrip",
    inputs={"w": w3},
    outputs=sympy.Array(_W),
    # |w| ≤ 1.5·√3 < π: the log map is the inverse of exp there; w = 0 is where the axis is lost
    domain={"w": (-1.5, 1.5)},
    exclude=[_theta2],
    margin=0.05,
    known=[
        KnownPoint(
            at={"w": [_R(1, 2), -1, _R(1, 4)]},
            value=[_R(1, 2), -1, _R(1, 4)],
            jacobian=_I3,
            note="log(exp([w]×)) = w: the Jacobian is the identity",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda w: _log_map(torch.linalg.matrix_exp(_skew(w))),
    description="axis-angle → matrix → axis-angle, exact output w "
    "(torch.linalg.matrix_exp, then atan2 of the skew part and trace)",
)

# -- the 6-D rotation representation ----------------------------------------------------------
a6 = array("a", (6,))
_a1, _a2 = list(a6)[:3], list(a6)[3:]
_n1 = sympy.sqrt(sq_norm(_a1))
_b1 = [e / _n1 for e in _a1]
_u2 = [e - _dot(_b1, _a2) * f for e, f in zip(_a2, _b1, strict=True)]
_b2 = [e / sympy.sqrt(sq_norm(_u2)) for e in _u2]
_b3 = _cross(_b1, _b2)


def _rotation_6d(a: torch.Tensor) -> torch.Tensor:
    # pytorch3d.transforms.rotation_6d_to_matrix (Zhou et al., CVPR 2019)
    a1, a2 = a[..., :3], a[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


geometry_rotation_6d = Case(
    "geometry_rotation_6d",
    inputs={"a": a6},
    outputs=sympy.Array([_b1, _b2, _b3]),
    domain={"a": (-2, 2)},
    # Gram–Schmidt needs a₁ ≠ 0 and a₂ not parallel to a₁
    exclude=[sq_norm(_a1), sq_norm(_cross(_a1, _a2))],
    margin=0.1,
    known=[
        KnownPoint(at={"a": [1, 0, 0, 0, 1, 0]}, value=_I3),
        KnownPoint(at={"a": [0, 2, 0, -1, 1, 0]}, value=[[0, 1, 0], [-1, 0, 0], [0, 0, 1]]),
    ],
    tags=_ARRAY,
    torch_impl=_rotation_6d,
    description="the rotation from the continuous 6-D representation by Gram–Schmidt, as "
    "pytorch3d.transforms.rotation_6d_to_matrix computes it (F.normalize, torch.linalg.cross)",
)

# -- coordinates ------------------------------------------------------------------------------
r, th, ph = scalar("r"), scalar("theta"), scalar("phi")
geometry_polar_to_cartesian = Case(
    "geometry_polar_to_cartesian",
    inputs={"r": r, "theta": th},
    outputs=sympy.Array([r * sympy.cos(th), r * sympy.sin(th)]),
    domain={"r": (0, 5), "theta": (-3, 3)},
    known=[
        KnownPoint(
            at={"r": 2, "theta": _PI / 2},
            value=[0, 2],
            jacobian=([0, 1], [-2, 0]),
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda r, t: torch.stack([r * torch.cos(t), r * torch.sin(t)], -1),
    description="(r, θ) → (x, y) (torch.cos, sin)",
)

p2 = array("p", (2,))
geometry_cartesian_to_polar = Case(
    "geometry_cartesian_to_polar",
    inputs={"p": p2},
    outputs=sympy.Array([sympy.sqrt(p2[0] ** 2 + p2[1] ** 2), sympy.atan2(p2[1], p2[0])]),
    domain={"p": (-3, 3)},
    # atan2 jumps across the negative x-axis and the origin has no angle: keep y ≠ 0
    exclude=[p2[1]],
    margin=0.01,
    known=[
        KnownPoint(
            at={"p": [1, 1]},
            value=[_S2, _PI / 4],
            jacobian=[[1 / _S2, 1 / _S2], [-_R(1, 2), _R(1, 2)]],
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda p: torch.stack(
        [torch.hypot(p[..., 0], p[..., 1]), torch.atan2(p[..., 1], p[..., 0])], -1
    ),
    description="(x, y) → (r, θ), the branch cut y = 0 excluded (torch.hypot, torch.atan2)",
)

geometry_spherical_to_cartesian = Case(
    "geometry_spherical_to_cartesian",
    inputs={"r": r, "theta": th, "phi": ph},
    outputs=sympy.Array(
        [
            r * sympy.sin(th) * sympy.cos(ph),
            r * sympy.sin(th) * sympy.sin(ph),
            r * sympy.cos(th),
        ]
    ),
    domain={"r": (0, 5), "theta": (0, 3.1), "phi": (-3, 3)},
    known=[KnownPoint(at={"r": 2, "theta": _PI / 2, "phi": 0}, value=[2, 0, 0])],
    tags=_ARRAY,
    torch_impl=lambda r, t, p: torch.stack(
        [r * torch.sin(t) * torch.cos(p), r * torch.sin(t) * torch.sin(p), r * torch.cos(t)], -1
    ),
    description="(r, θ polar, φ azimuth) → (x, y, z) (torch.sin, cos)",
)

p3 = array("p", (3,))
_rho = sympy.sqrt(p3[0] ** 2 + p3[1] ** 2)
geometry_cartesian_to_spherical = Case(
    "geometry_cartesian_to_spherical",
    inputs={"p": p3},
    outputs=sympy.Array(
        [sympy.sqrt(sq_norm(list(p3))), sympy.atan2(_rho, p3[2]), sympy.atan2(p3[1], p3[0])]
    ),
    domain={"p": (-3, 3)},
    # the azimuth's branch cut (y = 0, x < 0) and the polar axis (x = y = 0) lie in y = 0
    exclude=[p3[1]],
    margin=0.01,
    known=[KnownPoint(at={"p": [1, 1, 0]}, value=[_S2, _PI / 2, _PI / 4])],
    tags=_ARRAY,
    torch_impl=lambda p: torch.stack(
        [
            torch.linalg.vector_norm(p, dim=-1),
            torch.atan2(torch.hypot(p[..., 0], p[..., 1]), p[..., 2]),
            torch.atan2(p[..., 1], p[..., 0]),
        ],
        -1,
    ),
    description="(x, y, z) → (r, θ, φ), the plane y = 0 excluded "
    "(torch.linalg.vector_norm, hypot, atan2)",
)

# -- a planar 3-link arm ----------------------------------------------------------------------
_LINKS = (1, _R(4, 5), _R(1, 2))
qj = array("q", (3,))
_cum = [qj[0], qj[0] + qj[1], qj[0] + qj[1] + qj[2]]


def _arm(q: torch.Tensor) -> torch.Tensor:
    lengths = torch.tensor([float(v) for v in _LINKS], dtype=q.dtype, device=q.device)
    phi = torch.cumsum(q, -1)
    return torch.stack(
        [(lengths * torch.cos(phi)).sum(-1), (lengths * torch.sin(phi)).sum(-1), phi[..., -1]], -1
    )


geometry_kinematic_chain_3link = Case(
    "geometry_kinematic_chain_3link",
    inputs={"q": qj},
    outputs=sympy.Array(
        [
            sympy.Add(*[lk * sympy.cos(c) for lk, c in zip(_LINKS, _cum, strict=True)]),
            sympy.Add(*[lk * sympy.sin(c) for lk, c in zip(_LINKS, _cum, strict=True)]),
            _cum[2],
        ]
    ),
    domain={"q": (-3, 3)},
    known=[
        KnownPoint(
            at={"q": [0, 0, 0]},
            value=[_R(23, 10), 0, 0],
            jacobian=[[0, 0, 0], [_R(23, 10), _R(13, 10), _R(1, 2)], [1, 1, 1]],
            note="stretched out: ∂y/∂q_k is the length beyond joint k",
        )
    ],
    tags=_ARRAY,
    torch_impl=_arm,
    description="the end-effector pose (x, y, φ) of a planar 3-link arm with links 1, 0.8, 0.5 "
    "(torch.cumsum, cos, sin)",
)

# -- projection, areas, angles, distances -------------------------------------------------------
xy, z = array("xy", (2,)), scalar("z")
_F, _C = 2, _R(1, 2)
geometry_pinhole_projection = Case(
    "geometry_pinhole_projection",
    inputs={"xy": xy, "z": z},
    outputs=sympy.Array([_F * xy[0] / z + _C, _F * xy[1] / z + _C]),
    domain={"xy": (-2, 2), "z": (1, 5)},
    known=[
        KnownPoint(
            at={"xy": [1, -1], "z": 2},
            value=[_R(3, 2), -_R(1, 2)],
            jacobian=([[1, 0], [0, 1]], [-_R(1, 2), _R(1, 2)]),
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda xy, z: 2 * xy / z.unsqueeze(-1) + 0.5,
    description="the pinhole projection f·(x, y)/z + c with f = 2, c = 1/2, depth z in [1, 5]",
)

V = array("V", (3, 3))
_e1 = [V[1, k] - V[0, k] for k in range(3)]
_e2 = [V[2, k] - V[0, k] for k in range(3)]
_area2 = sq_norm(_cross(_e1, _e2))
geometry_triangle_area = Case(
    "geometry_triangle_area",
    inputs={"V": V},
    outputs=sympy.sqrt(_area2) / 2,
    domain={"V": (-2, 2)},
    exclude=[_area2],  # a degenerate triangle: the cone point of the norm
    margin=0.1,
    known=[KnownPoint(at={"V": [[0, 0, 0], [1, 0, 0], [0, 1, 0]]}, value=_R(1, 2))],
    tags=_SCALAR,
    torch_impl=lambda V: (
        torch.linalg.vector_norm(
            torch.linalg.cross(V[..., 1, :] - V[..., 0, :], V[..., 2, :] - V[..., 0, :], dim=-1),
            dim=-1,
        )
        / 2
    ),
    description="the area of a triangle in space, ½|(v₁ − v₀) × (v₂ − v₀)|, degenerate "
    "triangles excluded (torch.linalg.cross, vector_norm)",
)

u3, t3 = array("u", (3,)), array("t", (3,))
_uxt = _cross(list(u3), list(t3))
geometry_angle_between = Case(
    "geometry_angle_between",
    inputs={"u": u3, "t": t3},
    outputs=sympy.atan2(sympy.sqrt(sq_norm(_uxt)), _dot(list(u3), list(t3))),
    domain={"u": (-2, 2), "t": (-2, 2)},
    exclude=[sq_norm(_uxt)],  # parallel vectors: the angle's kink at 0 and π
    margin=0.1,
    known=[KnownPoint(at={"u": [1, 0, 0], "t": [1, 1, 0]}, value=_PI / 4)],
    tags=_SCALAR,
    torch_impl=lambda u, t: torch.atan2(
        torch.linalg.vector_norm(torch.linalg.cross(u, t, dim=-1), dim=-1), (u * t).sum(-1)
    ),
    description="the angle between two 3-vectors, atan2(|u × t|, u·t), parallel vectors "
    "excluded (torch.atan2, torch.linalg.cross)",
)

c3, rad = array("c", (3,)), scalar("radius")
_pc = [p3[k] - c3[k] for k in range(3)]
geometry_sdf_sphere = Case(
    "geometry_sdf_sphere",
    inputs={"p": p3, "c": c3, "radius": rad},
    outputs=sympy.sqrt(sq_norm(_pc)) - rad,
    domain={"p": (-3, 3), "c": (-1, 1), "radius": (0.5, 2)},
    exclude=[sq_norm(_pc)],  # the centre: the cone point of the distance
    margin=0.05,
    known=[
        KnownPoint(
            at={"p": [3, 0, 0], "c": [0, 0, 0], "radius": 1},
            value=2,
            jacobian=([1, 0, 0], [-1, 0, 0], -1),
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda p, c, radius: torch.linalg.vector_norm(p - c, dim=-1) - radius,
    description="the signed distance from p to a sphere, |p − c| − r (torch.linalg.vector_norm)",
)

CASES = [
    geometry_euler_zyx,
    geometry_quaternion_to_matrix,
    geometry_quaternion_rotate,
    geometry_quaternion_multiply,
    geometry_axis_angle_to_matrix,
    geometry_axis_angle_roundtrip,
    geometry_rotation_6d,
    geometry_polar_to_cartesian,
    geometry_cartesian_to_polar,
    geometry_spherical_to_cartesian,
    geometry_cartesian_to_spherical,
    geometry_kinematic_chain_3link,
    geometry_pinhole_projection,
    geometry_triangle_area,
    geometry_angle_between,
    geometry_sdf_sphere,
]
