# Independent reference for data.Permutation (SplitMix64, Fisher-Yates, Lemire's bounded
# draw), written from the algorithms' descriptions. TestPermutationMatchesReference pins its
# output; run it with `python3 data/testdata/permutation_ref.py` and paste the lists there
# if the algorithm is ever deliberately changed (which breaks resuming older runs).
M = (1 << 64) - 1
def perm(n, seed, epoch):
    s = [(seed + epoch) & M]
    def nxt():
        s[0] = (s[0] + 0x9e3779b97f4a7c15) & M
        z = s[0]
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
        return z ^ (z >> 31)
    def below(b):
        m = nxt() * b
        lo = m & M
        if lo < b:
            t = ((1 << 64) - b) % b
            while lo < t:
                m = nxt() * b
                lo = m & M
        return m >> 64
    p = list(range(n))
    for i in range(n - 1, 0, -1):
        j = below(i + 1)
        p[i], p[j] = p[j], p[i]
    return p
for args in [(10, 42, 0), (10, 42, 1), (16, 7, 3)]:
    print(args, perm(*args))
