#!/usr/bin/env python3
"""Polynomial coefficients for phi_kernel_cpu.cpp (float32 sinc).

Run: python3 phiop/gen_coeffs.py
Prints near-minimax fits (Chebyshev interpolation) in z = r^2 on z in [0, 1/4],
i.e. |r| <= 1/2, and their maximum absolute error on a fine grid:
  S(z) = sin(pi r) / (pi r)            (sinc on the reduced argument)
  D(z) = sinc'(r) / r = (cos(pi r) - sinc(r)) / r^2
cos(pi r) is not fitted: the kernel uses cos(pi r) = S(z) + z D(z).
Pure Python (math only), so it runs anywhere.
"""
import math

ZMAX = 0.25


def sinc_red(z):
    r = math.sqrt(z)
    return 1.0 if r == 0 else math.sin(math.pi * r) / (math.pi * r)


def dsinc_over_r(z):
    r = math.sqrt(z)
    if r < 1e-3:  # Taylor: -(pi^2/3) + (pi^4/30) z - (pi^6/840) z^2
        return -math.pi**2 / 3 + math.pi**4 / 30 * z - math.pi**6 / 840 * z * z
    return (math.cos(math.pi * r) - math.sin(math.pi * r) / (math.pi * r)) / z


def chebyshev_fit(func, degree):
    """Interpolate func at degree+1 Chebyshev nodes; return monomial coefficients in z."""
    count = degree + 1
    nodes = [math.cos(math.pi * (k + 0.5) / count) for k in range(count)]
    values = [func((x + 1) / 2 * ZMAX) for x in nodes]
    cheb = [2.0 / count * sum(values[k] * math.cos(math.pi * j * (k + 0.5) / count)
                              for k in range(count)) for j in range(count)]
    cheb[0] /= 2
    basis = [[1.0], [0.0, 1.0]]  # T_j(x) as monomials in x
    for j in range(2, count):
        up = [0.0] + [2 * v for v in basis[j - 1]]
        down = basis[j - 2] + [0.0] * (len(up) - len(basis[j - 2]))
        basis.append([u - d for u, d in zip(up, down)])
    in_x = [0.0] * count
    for j in range(count):
        for i, v in enumerate(basis[j]):
            in_x[i] += cheb[j] * v
    in_z = [0.0] * count  # substitute x = 2 z / ZMAX - 1
    for i in range(count):
        for m in range(i + 1):
            in_z[m] += in_x[i] * math.comb(i, m) * (2 / ZMAX) ** m * (-1) ** (i - m)
    return in_z


def horner(coeffs, z):
    acc = 0.0
    for v in reversed(coeffs):
        acc = acc * z + v
    return acc


def main():
    grid = [ZMAX * i / 20000 for i in range(20001)]
    for name, func, degree in (("S", sinc_red, 4), ("D", dsinc_over_r, 4)):
        coeffs = chebyshev_fit(func, degree)
        err = max(abs(horner(coeffs, z) - func(z)) for z in grid)
        print("%s degree %d, max abs error %.2e" % (name, degree, err))
        print("  " + ", ".join("%.9ef" % v for v in reversed(coeffs)) + "  (highest first)")
    # cos(pi r) from the two fits, as the kernel computes it
    s_fit, d_fit = chebyshev_fit(sinc_red, 4), chebyshev_fit(dsinc_over_r, 4)
    err = max(abs(horner(s_fit, z) + z * horner(d_fit, z) - math.cos(math.pi * math.sqrt(z))) for z in grid)
    print("cos(pi r) = S + z D, max abs error %.2e" % err)


if __name__ == "__main__":
    main()
