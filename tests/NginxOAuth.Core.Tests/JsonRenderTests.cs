using System.Text;
using NginxOAuth.Core.Json;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>nox_json_get / nox_json_compact semantics.</summary>
public sealed class JsonRenderTests
{
    private const string Doc =
        "{\"s\":\"caf\\u00e9\\n\\\"q\\\"\",\"n\":1.50,\"i\":-3,\"t\":true,\"f\":false,\"z\":null,"
        + "\"a\":[\"x\",1,null,[\"y\",2],{\"k\":\"v\"}],\"o\":{ \"k\" : [1, 2], \"e\": \"\\u00e9<>\" },"
        + "\"grants\":{\"access\":\"allow\"},\"grants.key\":\"dot\",\"e\":[],\"m\":[[1,[2]]]}";

    private static JsonReadResult Get(string path, PathKind kind, out string text, int capacity = 256,
        string delimiter = "", string quote = "")
    {
        var output = new byte[capacity];
        JsonReadResult result = JsonRender.Get(T.U(Doc), ClaimPath.Parse(T.U(path), kind, T.U(delimiter), T.U(quote)), output);
        text = result.IsOk ? Encoding.UTF8.GetString(output, 0, result.Length) : "";
        return result;
    }

    [TestCase("s", "café\n\"q\"", TestName = "String_is_rendered_unescaped")]
    [TestCase("n", "1.50", TestName = "Number_keeps_its_JSON_text")]
    [TestCase("i", "-3", TestName = "Negative_integer_is_rendered")]
    [TestCase("t", "true", TestName = "True_is_rendered")]
    [TestCase("f", "false", TestName = "False_is_rendered")]
    [TestCase("z", "", TestName = "Null_is_the_empty_string")]
    [TestCase("a", "x,1,,[\"y\",2],{\"k\":\"v\"}", TestName = "Array_elements_are_joined_by_commas")]
    [TestCase("e", "", TestName = "Empty_array_is_the_empty_string")]
    [TestCase("o", "{\"k\":[1,2],\"e\":\"é<>\"}", TestName = "Object_is_compact_valid_JSON")]
    [TestCase("grants.key", "dot", TestName = "Literal_name_may_contain_a_dot")]
    public void Member_is_rendered_for_a_variable(string name, string expected)
    {
        JsonReadResult result = Get(name, PathKind.Name, out string text);
        Assert.That(result.Error, Is.EqualTo(JsonReadError.None));
        Assert.That(text, Is.EqualTo(expected));
    }

    [TestCase("grants.access", PathKind.Nested, "allow", TestName = "Nested_path_descends")]
    [TestCase("\"grants.key\"", PathKind.Nested, "dot", TestName = "Nested_quoted_segment_is_literal")]
    [TestCase(".m[0][1]", PathKind.Nested, "2", TestName = "JQ_path_is_accepted_for_variables")]
    [TestCase("o\0k", PathKind.Names, "1,2", TestName = "NUL_separated_names_descend")]
    public void Path_kinds_resolve(string path, PathKind kind, string expected)
    {
        JsonReadResult result = Get(path, kind, out string text);
        Assert.That(result.Error, Is.EqualTo(JsonReadError.None));
        Assert.That(text, Is.EqualTo(expected));
    }

    [Test]
    public void Missing_member_is_not_found()
    {
        Assert.That(Get("nope", PathKind.Name, out _).Error, Is.EqualTo(JsonReadError.NotFound));
        Assert.That(Get("grants.nope", PathKind.Nested, out _).Error, Is.EqualTo(JsonReadError.NotFound));
        Assert.That(Get("s\0x", PathKind.Names, out _).Error, Is.EqualTo(JsonReadError.NotFound));
    }

    [Test]
    public void Small_buffer_reports_the_size_needed()
    {
        JsonReadResult result = Get("s", PathKind.Name, out _, capacity: 3);
        Assert.That(result.Error, Is.EqualTo(JsonReadError.BufferTooSmall));
        Assert.That(result.Length, Is.EqualTo(Encoding.UTF8.GetByteCount("café\n\"q\"")));
    }

    [Test]
    public void Invalid_path_and_invalid_JSON_are_reported()
    {
        Assert.That(Get("a..b", PathKind.Nested, out _).Error, Is.EqualTo(JsonReadError.PathInvalid));
        var output = new byte[16];
        Assert.That(JsonRender.Get(T.U("{"), ClaimPath.Parse(T.U("a"), PathKind.Name, default, default), output).Error,
            Is.EqualTo(JsonReadError.JsonInvalid));
    }

    [TestCase("{ \"a\" : [ 1 , 2.50 ] , \"b\" : { } }", "{\"a\":[1,2.50],\"b\":{}}", TestName = "Whitespace_is_removed_and_numbers_kept")]
    [TestCase("{\"s\":\"\\u00e9\\u4e2d\"}", "{\"s\":\"é中\"}", TestName = "Non_ASCII_is_not_escaped")]
    [TestCase("{\"s\":\"a\\\"b\\\\c\\n\"}", "{\"s\":\"a\\\"b\\\\c\\n\"}", TestName = "Required_escapes_are_kept")]
    [TestCase(" [true,false,null] ", "[true,false,null]", TestName = "Top_level_array_is_compacted")]
    [TestCase("\"x\"", "\"x\"", TestName = "Top_level_string_is_compacted")]
    public void Compact_reserializes(string json, string expected)
    {
        var output = new byte[256];
        JsonReadResult result = JsonRender.Compact(T.U(json), output);
        Assert.That(result.Error, Is.EqualTo(JsonReadError.None));
        Assert.That(Encoding.UTF8.GetString(output, 0, result.Length), Is.EqualTo(expected));
    }

    [Test]
    public void Compact_reports_invalid_JSON_and_small_buffers()
    {
        var output = new byte[4];
        Assert.That(JsonRender.Compact(T.U("{\"a\":"), output).Error, Is.EqualTo(JsonReadError.JsonInvalid));
        JsonReadResult small = JsonRender.Compact(T.U("{ \"abc\" : 1 }"), output);
        Assert.That(small.Error, Is.EqualTo(JsonReadError.BufferTooSmall));
        Assert.That(small.Length, Is.EqualTo(9));
    }

    [TestCase("{}", JsonShape.Object, TestName = "Guard_sees_an_object")]
    [TestCase("[1]", JsonShape.Array, TestName = "Guard_sees_an_array")]
    [TestCase("1", JsonShape.Scalar, TestName = "Guard_sees_a_scalar")]
    [TestCase("", JsonShape.Invalid, TestName = "Guard_refuses_empty_input")]
    [TestCase("{\"a\":1}{", JsonShape.Invalid, TestName = "Guard_refuses_trailing_data")]
    [TestCase("{\"a\":{\"b\":1},\"c\":{\"b\":2}}", JsonShape.Object, TestName = "Guard_allows_a_name_in_two_objects")]
    [TestCase("{\"a\":1,\"b\":{},\"a\":2}", JsonShape.DuplicateMember, TestName = "Guard_finds_a_duplicate_after_a_nested_object")]
    [TestCase("{\"a\":\"x\\ud800\"}", JsonShape.Invalid, TestName = "Guard_refuses_a_lone_high_surrogate_escape")]
    [TestCase("{\"a\":\"\\udc00x\"}", JsonShape.Invalid, TestName = "Guard_refuses_a_lone_low_surrogate_escape")]
    [TestCase("{\"a\":\"\\ud800\\u0041\"}", JsonShape.Invalid, TestName = "Guard_refuses_a_high_surrogate_before_another_escape")]
    [TestCase("{\"a\":\"\\ude00\\ud83d\"}", JsonShape.Invalid, TestName = "Guard_refuses_surrogates_in_the_wrong_order")]
    [TestCase("{\"\\ud800\":1}", JsonShape.Invalid, TestName = "Guard_refuses_a_lone_surrogate_in_a_name")]
    [TestCase("[\"\\uD83D\"]", JsonShape.Invalid, TestName = "Guard_refuses_a_lone_surrogate_in_an_array")]
    [TestCase("{\"a\":\"\\ud83d\\ude00 \\n \\\\ud800 \\u00e9\"}", JsonShape.Object, TestName = "Guard_allows_paired_surrogates_and_escaped_backslashes")]
    [TestCase("{\"a\":\"\\uD83D\\uDE00\"}", JsonShape.Object, TestName = "Guard_allows_upper_case_surrogate_pairs")]
    public void Guard_classifies(string json, JsonShape shape)
    {
        Assert.That(JsonGuard.Check(T.U(json)), Is.EqualTo(shape));
    }

    [Test]
    public void Guard_finds_a_duplicate_among_many_members()
    {
        var json = new StringBuilder("{");
        for (int i = 0; i < 5000; i++)
        {
            json.Append('"').Append('m').Append(i).Append("\":").Append(i).Append(',');
        }
        json.Append("\"m4321\":0}");
        Assert.That(JsonGuard.Check(T.U(json.ToString())), Is.EqualTo(JsonShape.DuplicateMember));
    }
}
