using Excise.Projection;
using Excise.Serialization;
using Excise.Tests.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Projection;

public class ConceptBasisTests(ConceptBasisFixture bases) : IClassFixture<ConceptBasisFixture>
{
    const double OrthonormalTolerance = 1e-5;

    [Fact]
    public void Basis_is_an_orthonormal_float32_matrix_of_encoder_width_by_rank()
    {
        var basis = bases.Acme;
        Assert.Equal(new long[] { 384, basis.Rank }, basis.U.shape);
        Assert.Equal(ScalarType.Float32, basis.U.dtype);
        Assert.Equal(DeviceType.CPU, basis.U.device_type);
        Assert.Equal((384, basis.Rank), (basis.Dimension, basis.Info.Rank));
        Assert.True(SubspaceMath.OrthonormalityError(basis.U) < OrthonormalTolerance);
        Assert.Equal(8 * 4, basis.Info.VectorsCollected); // 8 prompts x (the, ac, ##me, logo)
        Assert.Equal(TinyRun.Encoder.Id, basis.Info.EncoderId);
        Assert.Equal(["the Acme logo"], basis.Info.Concepts);
        Assert.Contains("a bag with the Acme logo", basis.Info.Prompts);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(0.99)]
    public void Energy_threshold_keeps_the_fewest_leading_directions_reaching_it(double energy)
    {
        using var basis = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], ConceptBasisFixture.Small(energy: energy));
        var cumulative = SubspaceMath.CumulativeEnergy(basis.Info.SingularValues);
        Assert.True(basis.Info.EnergyKept >= energy, $"kept {basis.Info.EnergyKept} < {energy}");
        Assert.Equal(cumulative[basis.Rank - 1], basis.Info.EnergyKept);
        if (basis.Rank > 1) Assert.True(cumulative[basis.Rank - 2] < energy, $"rank {basis.Rank - 1} already keeps {cumulative[basis.Rank - 2]}");
        Assert.True(SubspaceMath.OrthonormalityError(basis.U) < OrthonormalTolerance);
    }

    [Fact]
    public void Energy_threshold_needs_more_directions_for_more_energy()
    {
        using var half = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], ConceptBasisFixture.Small(energy: 0.5));
        Assert.True(half.Rank < bases.Acme.Rank, $"50% needs {half.Rank}, 99% needs {bases.Acme.Rank}");
        // Same vectors, same SVD: the smaller basis is the leading part of the larger one.
        var cosines = SubspaceMath.PrincipalCosines(half.U, bases.Acme.U[.., ..half.Rank]);
        Assert.True(cosines.Min() > 1 - 1e-5, $"smallest principal cosine {cosines.Min()}");
    }

    [Fact]
    public void Fixed_rank_is_honoured()
    {
        using var basis = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], ConceptBasisFixture.Small(rank: 5));
        Assert.Equal(new long[] { 384, 5 }, basis.U.shape);
        Assert.Equal(5, basis.Info.Rank);
        Assert.Equal(SubspaceMath.CumulativeEnergy(basis.Info.SingularValues)[4], basis.Info.EnergyKept);
        Assert.True(SubspaceMath.OrthonormalityError(basis.U) < OrthonormalTolerance);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(385)]
    public void Impossible_rank_is_refused_naming_the_range(int rank)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], ConceptBasisFixture.Small(rank: rank)));
        Assert.Contains($"Rank {rank}", e.Message);
        Assert.Contains("1 to 384", e.Message);
    }

    [Fact]
    public void Rank_above_the_collected_vectors_is_refused()
    {
        // 8 prompts x 4 concept tokens cannot span 100 directions.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], ConceptBasisFixture.Small(rank: 100)));
        Assert.Contains("exceeds the", e.Message);
        Assert.Contains("independent directions", e.Message);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Energy_outside_zero_to_one_is_refused(double energy) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], ConceptBasisFixture.Small(energy: energy)));

    [Fact]
    public void Duplicate_prompts_are_dropped_as_near_duplicate_vectors()
    {
        string[] distinct = ["a bag with {}", "a coat with {}"];
        using var once = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"],
            new SubspaceOptions(ExtraPrompts: distinct, IncludeBuiltInPrompts: false));
        using var repeated = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"],
            new SubspaceOptions(ExtraPrompts: [.. distinct, .. distinct, distinct[0]], IncludeBuiltInPrompts: false));

        Assert.Equal(8, once.Info.VectorsCollected);
        Assert.Equal(20, repeated.Info.VectorsCollected);
        Assert.True(repeated.Info.VectorsKept < repeated.Info.VectorsCollected);
        Assert.Equal(once.Info.VectorsKept, repeated.Info.VectorsKept);
        Assert.Equal(once.Rank, repeated.Rank);
    }

    [Fact]
    public void DropNearDuplicates_keeps_first_occurrence_and_drops_negligible_vectors()
    {
        double[] a = [1, 0, 0], nearA = [1, 0.05, 0], b = [0, 1, 0], zero = [0, 0, 0];
        var kept = SubspaceMath.DropNearDuplicates([a, nearA, b, zero, a], maxCosine: 0.995);
        Assert.Equal([a, b], kept);
        Assert.Equal(3, SubspaceMath.DropNearDuplicates([a, nearA, b], maxCosine: 0.999).Count); // cos(a, nearA) = 0.9988
    }

    [Fact]
    public void Save_then_load_is_bit_exact_including_metadata()
    {
        using var dir = new TempDir();
        var path = dir.File("acme.safetensors");
        var saved = bases.Acme;
        saved.Save(path);
        using var loaded = ConceptBasis.Load(path);

        Assert.True(loaded.U.eq(saved.U).all().ToBoolean());
        Assert.Equal(saved.U.shape, loaded.U.shape);
        var (a, b) = (saved.Info, loaded.Info);
        Assert.Equal(a.Concepts, b.Concepts);
        Assert.Equal(a.Prompts, b.Prompts);
        Assert.Equal(a.EncoderId, b.EncoderId);
        Assert.Equal(a.Mode, b.Mode);
        Assert.Equal(BitConverter.DoubleToInt64Bits(a.EnergyKept), BitConverter.DoubleToInt64Bits(b.EnergyKept));
        Assert.Equal(a.Rank, b.Rank);
        Assert.Equal(a.SingularValues.Select(BitConverter.DoubleToInt64Bits), b.SingularValues.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal((a.VectorsCollected, a.VectorsKept), (b.VectorsCollected, b.VectorsKept));
        Assert.Equal("excise.concept-basis", SafetensorsFile.ReadMetadata(path)["format"]);
    }

    [Fact]
    public void Load_refuses_a_non_orthonormal_basis_naming_the_file()
    {
        using var dir = new TempDir();
        var good = dir.File("good.safetensors");
        bases.Acme.Save(good);
        var bad = dir.File("skewed.safetensors");
        using (var contents = SafetensorsFile.Load(good))
        {
            using var skewed = contents["basis"].clone();
            skewed[.., 1] += 0.1 * skewed[.., 0];
            SafetensorsFile.Save(bad, [new("basis", skewed), new("singular_values", contents["singular_values"])], contents.Metadata);
        }
        var e = Assert.Throws<InvalidDataException>(() => ConceptBasis.Load(bad));
        Assert.Contains(bad, e.Message);
        Assert.Contains("not orthonormal", e.Message);
    }

    [Fact]
    public void Load_refuses_truncated_files_wrong_shapes_and_missing_metadata()
    {
        using var dir = new TempDir();
        var good = dir.File("good.safetensors");
        bases.Acme.Save(good);

        var truncated = dir.File("truncated.safetensors");
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length - 100)]);
        Assert.Contains(truncated, Assert.Throws<InvalidDataException>(() => ConceptBasis.Load(truncated)).Message);

        using var contents = SafetensorsFile.Load(good);
        var metadata = contents.Metadata.ToDictionary();

        var noFormat = dir.File("no-format.safetensors");
        SafetensorsFile.Save(noFormat, [new("basis", contents["basis"]), new("singular_values", contents["singular_values"])],
            metadata.Where(kv => kv.Key != "format").ToDictionary());
        var e = Assert.Throws<InvalidDataException>(() => ConceptBasis.Load(noFormat));
        Assert.Contains(noFormat, e.Message);
        Assert.Contains("'format' is missing", e.Message);

        var wrongRank = dir.File("wrong-rank.safetensors");
        SafetensorsFile.Save(wrongRank, [new("basis", contents["basis"]), new("singular_values", contents["singular_values"])],
            new Dictionary<string, string>(metadata) { ["rank"] = "3" });
        Assert.Contains("metadata says [384, 3]", Assert.Throws<InvalidDataException>(() => ConceptBasis.Load(wrongRank)).Message);

        var transposed = dir.File("transposed.safetensors");
        using var wide = contents["basis"].t().contiguous();
        SafetensorsFile.Save(transposed, [new("basis", wide), new("singular_values", contents["singular_values"])], metadata);
        Assert.Contains("1 ≤ k ≤ d", Assert.Throws<InvalidDataException>(() => ConceptBasis.Load(transposed)).Message);
    }

    [Fact]
    public void Union_spans_both_inputs_with_orthonormal_columns_and_merged_info()
    {
        var (acme, scarf) = (bases.Acme, bases.Scarf);
        using var union = ConceptBasis.Union([acme, scarf]);

        Assert.True(SubspaceMath.OrthonormalityError(union.U) < OrthonormalTolerance);
        Assert.InRange(union.Rank, Math.Max(acme.Rank, scarf.Rank) + 1, acme.Rank + scarf.Rank);
        foreach (var input in new[] { acme, scarf })
        {
            var residual = input.U - union.U.matmul(union.U.t().matmul(input.U));
            double worst = residual.norm(0, keepdim: false).max().ToDouble();
            Assert.True(worst < 1e-5, $"an input column is {worst:G3} outside the union");
        }
        Assert.True(union.U[.., ..acme.Rank].eq(acme.U).all().ToBoolean(), "the first basis's columns come first, unchanged");
        Assert.Equal(["the Acme logo", "a red scarf"], union.Info.Concepts);
        Assert.Equal(acme.Info.Prompts.Count + scarf.Info.Prompts.Count, union.Info.Prompts.Count);
        Assert.Equal(acme.Info.VectorsCollected + scarf.Info.VectorsCollected, union.Info.VectorsCollected);
    }

    [Fact]
    public void Union_drops_dependent_directions()
    {
        var acme = bases.Acme;
        using var half = new ConceptBasis(acme.U[.., ..(acme.Rank / 2)], acme.Info with { Rank = acme.Rank / 2 });
        using var same = ConceptBasis.Union([acme, acme, half]);
        Assert.Equal(acme.Rank, same.Rank);
        Assert.True(same.U.eq(acme.U).all().ToBoolean());
    }

    [Fact]
    public void Union_refuses_bases_from_different_encoders_or_modes()
    {
        var acme = bases.Acme;
        using var otherEncoder = new ConceptBasis(bases.Scarf.U, bases.Scarf.Info with { EncoderId = "some other encoder" });
        Assert.Contains("different text encoders", Assert.Throws<ArgumentException>(() => ConceptBasis.Union([acme, otherEncoder])).Message);
        using var otherMode = new ConceptBasis(bases.Scarf.U, bases.Scarf.Info with { Mode = SubspaceMode.AllTokens });
        Assert.Contains("one mode", Assert.Throws<ArgumentException>(() => ConceptBasis.Union([acme, otherMode])).Message);
    }

    [Fact]
    public void Constructor_refuses_non_orthonormal_columns()
    {
        using var skewed = ones(384, 2) / Math.Sqrt(384);
        var info = bases.Acme.Info with { Rank = 2 };
        Assert.Contains("not orthonormal", Assert.Throws<ArgumentException>(() => new ConceptBasis(skewed, info)).Message);
    }
}
