// The (cos, sin) table of rotary embedding, computed once on the host in double precision so that every
// back end rotates by exactly the same float32 values (spec §3: angle t·θ^(−2i/HS)).
namespace SddIlgpu.Tensors.Ops;

public static class RopeTable
{
    /// <summary>Returns (T, HS/2, 2) values: cos then sin of t·θ^(−2i/HS) for t &lt; T, i &lt; HS/2.</summary>
    public static float[] Build(int seqLen, int headDim, double theta)
    {
        if (headDim % 2 != 0)
            throw new ArgumentException($"Rotary embedding needs an even head dimension; got {headDim}.", nameof(headDim));
        var half = headDim / 2;
        var table = new float[seqLen * half * 2];
        for (var t = 0; t < seqLen; t++)
            for (var i = 0; i < half; i++)
            {
                var angle = t * Math.Pow(theta, -2.0 * i / headDim);
                table[(t * half + i) * 2] = (float)Math.Cos(angle);
                table[(t * half + i) * 2 + 1] = (float)Math.Sin(angle);
            }
        return table;
    }
}
