// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
// generator whose output is a pure function of (seed, stream, index). The same code runs on the host and
// inside kernels (integer ops only), so host-side initialisation and device-side draws agree bit for bit.
namespace SddIlgpu.Tensors.Random;

/// <summary>Counter-based random numbers keyed by (seed, stream, index).</summary>
public static class Philox
{
    const uint M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

    /// <summary>The four 32-bit words of block (seed, stream, index).</summary>
    public static (uint X0, uint X1, uint X2, uint X3) Block(ulong seed, ulong stream, ulong index)
    {
        uint c0 = (uint)index, c1 = (uint)(index >> 32), c2 = (uint)stream, c3 = (uint)(stream >> 32);
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (var round = 0; round < 10; round++)
        {
            var p0 = (ulong)M0 * c0;
            var p1 = (ulong)M1 * c2;
            var n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            var n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            c1 = (uint)p1;
            c3 = (uint)p0;
            c0 = n0;
            c2 = n2;
            k0 += W0;
            k1 += W1;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>The first word of block (seed, stream, index).</summary>
    public static uint Next(ulong seed, ulong stream, ulong index) => Block(seed, stream, index).X0;

    /// <summary>A float in [0, 1) with 24 random bits. Avoids (float)uint, which ILGPU routes through double.</summary>
    public static float ToUniform(uint bits) => (int)(bits >> 8) * (1f / 16777216f);

    /// <summary>Uniform [0, 1) draw for (seed, stream, index).</summary>
    public static float Uniform(ulong seed, ulong stream, ulong index) => ToUniform(Next(seed, stream, index));

    /// <summary>Standard normal draw (Box–Muller on the block's first two words, computed in double on the host).</summary>
    public static double Normal(ulong seed, ulong stream, ulong index)
    {
        var (x0, x1, _, _) = Block(seed, stream, index);
        var u1 = ((x0 >> 8) + 1) * (1.0 / 16777216.0); // (0, 1]
        var u2 = (x1 >> 8) * (1.0 / 16777216.0);
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Normal draw with std <paramref name="std"/> cut at ±<paramref name="cut"/>·std by rejection.</summary>
    public static float TruncatedNormal(ulong seed, ulong stream, ulong index, double std, double cut = 3.0)
    {
        for (ulong attempt = 0; ; attempt++)
        {
            var z = Normal(seed, stream + (attempt << 48), index);
            if (Math.Abs(z) <= cut)
                return (float)(z * std);
        }
    }

    /// <summary>A stable 64-bit stream id for a name (FNV-1a), e.g. a parameter's name.</summary>
    public static ulong StreamOf(string name)
    {
        var h = 0xCBF29CE484222325ul;
        foreach (var ch in name)
        {
            h ^= ch;
            h *= 0x100000001B3ul;
        }
        return h;
    }

    /// <summary>Fills <paramref name="values"/> with uniform draws in [lo, hi).</summary>
    public static void FillUniform(Span<float> values, ulong seed, ulong stream, float lo = 0f, float hi = 1f)
    {
        for (var i = 0; i < values.Length; i++)
            values[i] = lo + (hi - lo) * Uniform(seed, stream, (ulong)i);
    }

    /// <summary>Fills <paramref name="values"/> with normal draws N(mean, std²).</summary>
    public static void FillNormal(Span<float> values, ulong seed, ulong stream, double mean, double std)
    {
        for (var i = 0; i < values.Length; i++)
            values[i] = (float)(mean + std * Normal(seed, stream, (ulong)i));
    }

    /// <summary>Fills <paramref name="values"/> with truncated normal draws (±cut·std).</summary>
    public static void FillTruncatedNormal(Span<float> values, ulong seed, ulong stream, double std, double cut = 3.0)
    {
        for (var i = 0; i < values.Length; i++)
            values[i] = TruncatedNormal(seed, stream, (ulong)i, std, cut);
    }
}
