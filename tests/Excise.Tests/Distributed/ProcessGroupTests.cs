using Excise.Distributed;
using static TorchSharp.torch;

namespace Excise.Tests.Distributed;

public class ProcessGroupTests
{
    [Fact]
    public void Outside_mpirun_the_group_is_one_process_whose_collectives_are_the_identity_and_libmpi_stays_unloaded()
    {
        Assert.Null(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE")); // the test itself runs without mpirun
        using var group = ProcessGroup.FromEnvironment();
        Assert.IsType<SingleProcessGroup>(group);
        Assert.Equal((0, 1, true), (group.Rank, group.Size, group.IsRoot));

        float[] floats = [1.5f, -2f];
        double[] doubles = [3.25];
        group.SumInPlace(floats);
        group.SumInPlace(doubles);
        group.Barrier();
        group.WaitForAll(TimeSpan.FromSeconds(1));
        Assert.Equal([1.5f, -2f], floats);
        Assert.Equal([3.25], doubles);
        Assert.Equal(0.1, group.Sum(0.1));
        group.RequireSameOnEveryRank(42, "weights");
        Assert.DoesNotContain("libmpi", File.ReadAllText("/proc/self/maps"));
    }

    /// <summary>Rank 0 of two, where the other rank's contribution to every sum is given: enough to see what rank 0 decides.</summary>
    sealed class RankZeroOfTwo(Func<double[], double[]> otherRank) : ProcessGroup
    {
        public override int Rank => 0;
        public override int Size => 2;
        public override void SumInPlace(float[] values) => throw new NotSupportedException();
        public override void SumInPlace(double[] values)
        {
            var other = otherRank(values);
            for (int i = 0; i < values.Length; i++) values[i] += other[i];
        }
        public override void Barrier() { }
        public override void WaitForAll(TimeSpan poll) { }
        public override void Abort(int exitCode) => throw new NotSupportedException();
    }

    [Fact]
    public void Ranks_with_different_digests_stop_with_a_message_naming_the_rank_and_the_same_digest_passes()
    {
        const ulong digest = 0xFEDC_BA98_7654_3210; // both halves above 2^31: exact through the double sum
        static double[] Slots(ulong d) => [0, 0, d >> 32, d & 0xFFFF_FFFF];
        new RankZeroOfTwo(_ => Slots(digest)).RequireSameOnEveryRank(digest, "weights after step 3");
        var mismatch = Assert.Throws<ReplicaMismatchException>(() => new RankZeroOfTwo(_ => Slots(digest ^ 1)).RequireSameOnEveryRank(digest, "weights after step 3"));
        Assert.Contains("weights after step 3", mismatch.Message);
        Assert.Contains("rank 1 differs from rank 0", mismatch.Message);
    }

    [Fact]
    public void The_weight_digest_sees_one_changed_bit_and_where_tensors_begin()
    {
        using var scope = NewDisposeScope();
        var a = arange(6, dtype: ScalarType.Float32);
        ulong whole = WeightDigest.Of([a]);
        Assert.Equal(whole, WeightDigest.Of([a.clone()]));
        var changed = a.clone();
        changed[5] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(5f) ^ 1); // the last mantissa bit
        Assert.NotEqual(whole, WeightDigest.Of([changed]));
        Assert.NotEqual(whole, WeightDigest.Of([a.narrow(0, 0, 2), a.narrow(0, 2, 4)]));
        Assert.NotEqual(WeightDigest.Of([a.narrow(0, 0, 2), a.narrow(0, 2, 4)]), WeightDigest.Of([a.narrow(0, 0, 3), a.narrow(0, 3, 3)]));
    }
}
