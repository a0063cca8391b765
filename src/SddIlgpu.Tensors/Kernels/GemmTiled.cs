// The fast GEMM kernel: each 256-thread group computes a 64×64 tile of C, staging 16-wide K-slices of op(A)
// and op(B) in static shared memory (8 KB) and keeping a 4×4 register block per thread in hand-unrolled
// scalars (ILGPU 1.5.3 does not unroll loops, and local arrays live in slow local memory).
using ILGPU;
using ILGPU.Runtime;

namespace SddIlgpu.Tensors.Kernels;

internal static class GemmTiled
{
    public const int Tile = 64;
    public const int KSlice = 16;
    public const int Threads = 256;
    const int Side = 16;

    public static int TilesOf(int n) => (n + Tile - 1) / Tile;

    /// <summary>
    /// Thread (tx, ty) of the 16×16 group owns rows ty + 16·i and columns tx + 16·j of the tile (i, j in 0..3),
    /// so that a warp's shared-memory reads of B are contiguous and its stores to C coalesce. Out-of-range
    /// rows, columns and k are loaded as 0; each output still adds its products in k order.
    /// </summary>
    [Kernel]
    internal static void TiledKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g)
    {
        var aTile = SharedMemory.Allocate<float>(KSlice * Tile); // aTile[k·64 + m] = op(A)(m0 + m, k0 + k)
        var bTile = SharedMemory.Allocate<float>(KSlice * Tile); // bTile[k·64 + n] = op(B)(k0 + k, n0 + n)
        var tid = Group.IdxX;
        var tx = tid % Side;
        var ty = tid / Side;
        var tilesN = TilesOf(g.N);
        var tiles = TilesOf(g.M) * tilesN;
        for (var z = Grid.IdxY; z < g.BatchCount; z += Grid.DimY)
        {
            var baseA = g.A.Base(z, g.BatchInner);
            var baseB = g.B.Base(z, g.BatchInner);
            var kz = g.KOf(z); // K of this matrix (a split-K product's last range is shorter)
            for (var tile = Grid.IdxX; tile < tiles; tile += Grid.DimX)
            {
                var m0 = tile / tilesN * Tile;
                var n0 = tile % tilesN * Tile;
                if (g.Causal == GemmArgs.CausalSkipUpper && n0 > m0 + Tile - 1)
                    continue; // every entry lies above the diagonal: the causal softmax writes it
                var kEnd = Math.Min(g.KEnd(m0, Tile), kz);
                float c00 = 0, c01 = 0, c02 = 0, c03 = 0;
                float c10 = 0, c11 = 0, c12 = 0, c13 = 0;
                float c20 = 0, c21 = 0, c22 = 0, c23 = 0;
                float c30 = 0, c31 = 0, c32 = 0, c33 = 0;
                for (var k0 = g.KBegin(m0); k0 < kEnd; k0 += KSlice)
                {
                    for (var l = tid; l < KSlice * Tile; l += Threads)
                    {
                        LoadA(a, aTile, g, baseA, m0, k0, kz, l);
                        LoadB(b, bTile, g, baseB, n0, k0, kz, l);
                    }
                    Group.Barrier();
                    for (var k = 0; k < KSlice; k++)
                    {
                        var at = k * Tile;
                        float a0 = aTile[at + ty], a1 = aTile[at + ty + 16], a2 = aTile[at + ty + 32], a3 = aTile[at + ty + 48];
                        float b0 = bTile[at + tx], b1 = bTile[at + tx + 16], b2 = bTile[at + tx + 32], b3 = bTile[at + tx + 48];
                        c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                        c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                        c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                        c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
                    }
                    Group.Barrier();
                }
                var baseC = g.C.Base(z, g.BatchInner);
                int m = m0 + ty, n = n0 + tx;
                g.Store(c, baseC, m, n, c00); g.Store(c, baseC, m, n + 16, c01); g.Store(c, baseC, m, n + 32, c02); g.Store(c, baseC, m, n + 48, c03);
                m += 16;
                g.Store(c, baseC, m, n, c10); g.Store(c, baseC, m, n + 16, c11); g.Store(c, baseC, m, n + 32, c12); g.Store(c, baseC, m, n + 48, c13);
                m += 16;
                g.Store(c, baseC, m, n, c20); g.Store(c, baseC, m, n + 16, c21); g.Store(c, baseC, m, n + 32, c22); g.Store(c, baseC, m, n + 48, c23);
                m += 16;
                g.Store(c, baseC, m, n, c30); g.Store(c, baseC, m, n + 16, c31); g.Store(c, baseC, m, n + 32, c32); g.Store(c, baseC, m, n + 48, c33);
                // As in GemmBlocked: keeps the guarded stores' branches out of the tile loop's back edge, where PoCL
                // 3.1 ran a guarded store for the whole group (docs/kernels.md). No shared memory is read after it.
                Group.Barrier();
            }
        }
    }

    /// <summary>Element l of the A slice (k &lt; kz, the matrix's K); consecutive threads read consecutive addresses of the stored matrix.</summary>
    static void LoadA(ArrayView<float> a, ArrayView<float> aTile, GemmArgs g, long baseA, int m0, int k0, int kz, int l)
    {
        int k, m;
        if (g.TransA == 0)
        {
            k = l % KSlice; // A stored (M, K): k is contiguous
            m = l / KSlice;
        }
        else
        {
            m = l % Tile; // A stored (K, M): m is contiguous
            k = l / Tile;
        }
        var gm = m0 + m;
        var gk = k0 + k;
        aTile[k * Tile + m] = gm < g.M && gk < kz ? a[baseA + gm * g.A.StrideRow + gk * g.A.StrideCol] : 0f;
    }

    /// <summary>Element l of the B slice; consecutive threads read consecutive addresses of the stored matrix.</summary>
    static void LoadB(ArrayView<float> b, ArrayView<float> bTile, GemmArgs g, long baseB, int n0, int k0, int kz, int l)
    {
        int k, n;
        if (g.TransB == 0)
        {
            n = l % Tile; // B stored (K, N): n is contiguous
            k = l / Tile;
        }
        else
        {
            k = l % KSlice; // B stored (N, K): k is contiguous
            n = l / KSlice;
        }
        var gn = n0 + n;
        var gk = k0 + k;
        bTile[k * Tile + n] = gn < g.N && gk < kz ? b[baseB + gk * g.B.StrideRow + gn * g.B.StrideCol] : 0f;
    }
}
