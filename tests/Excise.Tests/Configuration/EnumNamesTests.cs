using Excise.Attacks;
using Excise.Configuration;
using Excise.Diffusion;
using Excise.Projection;
using Excise.Training;

namespace Excise.Tests.Configuration;

public sealed class EnumNamesTests
{
    /// <summary>Every public enum of the library, so an enum added later is held to the same spelling.</summary>
    public static TheoryData<Type> LibraryEnums()
    {
        var data = new TheoryData<Type>();
        foreach (var type in typeof(RunConfig).Assembly.GetTypes().Where(t => t.IsEnum && (t.IsPublic || t.IsNestedPublic)))
            data.Add(type);
        return data;
    }

    [Theory]
    [MemberData(nameof(LibraryEnums))]
    public void Every_enum_is_spelt_as_the_config_files_spell_it_and_reads_back(Type type)
    {
        var toName = typeof(EnumNames).GetMethod(nameof(EnumNames.ToName))!.MakeGenericMethod(type);
        var tryParse = typeof(EnumNames).GetMethod(nameof(EnumNames.TryParse))!.MakeGenericMethod(type);
        var spellings = new HashSet<string>();
        foreach (var value in Enum.GetValues(type))
        {
            var name = (string)toName.Invoke(null, [value])!;
            // A config that says "arm": "update-projection" must mean what --arms update-projection means.
            Assert.Equal(System.Text.Json.JsonSerializer.Deserialize<string>(ConfigLoader.ToJson(value)), name);
            Assert.True(spellings.Add(name), $"{type.Name}: two members are spelt '{name}'");
            object?[] args = [" " + name.ToUpperInvariant() + " ", null];
            Assert.True((bool)tryParse.Invoke(null, args)!);
            Assert.Equal(value, args[1]);
        }
    }

    [Fact]
    public void The_command_line_spellings_users_type_are_the_documented_ones()
    {
        Assert.Equal("inversion-control", AttackKind.InversionControl.ToName());
        Assert.Equal("baseline-rate", AttackKind.BaselineRate.ToName());
        Assert.Equal("dpm++2m", SamplerKind.DpmSolver2M.ToName());
        Assert.Equal("concept-tokens", SubspaceMode.ConceptTokens.ToName());
        Assert.Equal("masked-update-projection", TrainingArm.MaskedUpdateProjection.ToName());
        Assert.Equal(SubspaceMode.AllTokens, EnumNames.Parse<SubspaceMode>("AllTokens", "mode")); // what older basis files wrote
        var e = Assert.Throws<ArgumentException>(() => EnumNames.Parse<TrainingArm>("update_projection", "arm"));
        Assert.Contains("arm must be one of standard,", e.Message);
        Assert.Contains("(got 'update_projection')", e.Message);
    }
}
