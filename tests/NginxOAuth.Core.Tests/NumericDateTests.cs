using System;
using System.Text;
using System.Text.Json;
using NginxOAuth.Core.Json;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>
/// The one reading of time values: every JSON number form to whole seconds
/// rounded down, exactly, and out of range beyond a 64-bit second count.
/// </summary>
public sealed class NumericDateTests
{
    [TestCase("1796158291", 1796158291L)]
    [TestCase("17961582910e-1", 1796158291L)]
    [TestCase("17961582915e-1", 1796158291L)]
    [TestCase("1796158291.5", 1796158291L)]
    [TestCase("1796158291.999999999999999999999999999999", 1796158291L)]
    [TestCase("1.796158291E9", 1796158291L)]
    [TestCase("1.7961582915E+9", 1796158291L)]
    [TestCase("179615829100000e-5", 1796158291L)]
    [TestCase("0.0000000001796158291e19", 1796158291L)]
    [TestCase("0", 0L)]
    [TestCase("-0", 0L)]
    [TestCase("-0.0e7", 0L)]
    [TestCase("0.5", 0L)]
    [TestCase("1e-99999999999999", 0L)]
    [TestCase("-1e-99999999999999", -1L)]
    [TestCase("-1", -1L)]
    [TestCase("-1.5", -2L)]
    [TestCase("-15e-1", -2L)]
    [TestCase("-1.0", -1L)]
    [TestCase("-10e-1", -1L)]
    [TestCase("9223372036854775807", long.MaxValue)]
    [TestCase("9223372036854775807.9", long.MaxValue)]
    [TestCase("922337203685477580.7e1", long.MaxValue)]
    [TestCase("-9223372036854775808", long.MinValue)]
    [TestCase("-9223372036854775807.5", long.MinValue)]
    [TestCase("1e18", 1_000_000_000_000_000_000L)]
    public void Number_reads_as_whole_seconds_rounded_down(string text, long expected)
    {
        Assert.That(NumericDate.Read(Encoding.ASCII.GetBytes(text), out long seconds), Is.EqualTo(NumericDateStatus.Ok));
        Assert.That(seconds, Is.EqualTo(expected));
    }

    [TestCase("9223372036854775808")]
    [TestCase("9223372036854775808.0")]
    [TestCase("-9223372036854775809")]
    [TestCase("-9223372036854775808.5")]
    [TestCase("1e19")]
    [TestCase("1e999")]
    [TestCase("1E+400")]
    [TestCase("-1e999")]
    [TestCase("99999999999999999999999999999999")]
    [TestCase("1e99999999999999999999")]
    public void Number_beyond_64_bits_is_out_of_range(string text)
    {
        Assert.That(NumericDate.Read(Encoding.ASCII.GetBytes(text), out _), Is.EqualTo(NumericDateStatus.OutOfRange));
    }

    [TestCase("")]
    [TestCase("-")]
    [TestCase("1.")]
    [TestCase(".5")]
    [TestCase("1e")]
    [TestCase("1e+")]
    [TestCase("\"1\"")]
    [TestCase("1x")]
    [TestCase("Infinity")]
    [TestCase("NaN")]
    public void Text_that_is_not_a_number_is_not_a_number(string text)
    {
        Assert.That(NumericDate.Read(Encoding.ASCII.GetBytes(text), out _), Is.EqualTo(NumericDateStatus.NotANumber));
    }

    [Test]
    public void Every_form_of_the_same_second_agrees_with_decimal_where_decimal_is_exact()
    {
        var random = new Random(10);
        for (int i = 0; i < 2000; i++)
        {
            long whole = random.NextInt64(-4_000_000_000, 4_000_000_000);
            int fraction = random.Next(0, 1000);
            decimal value = whole + fraction / 1000m;
            long expected = (long)decimal.Floor(value);
            string plain = value.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);
            string scaled = (value * 1000).ToString("0", System.Globalization.CultureInfo.InvariantCulture) + "e-3";
            string sci = value.ToString("0.000000000000E+0", System.Globalization.CultureInfo.InvariantCulture);
            foreach (string text in new[] { plain, scaled, sci })
            {
                Assert.That(NumericDate.Read(Encoding.ASCII.GetBytes(text), out long seconds), Is.EqualTo(NumericDateStatus.Ok), text);
                Assert.That(seconds, Is.EqualTo(expected), text);
            }
        }
    }

    [Test]
    public void Parsed_values_read_the_same()
    {
        using JsonDocument doc = JsonDocument.Parse("{\"a\":17961582915e-1,\"b\":\"1\",\"c\":1e999}");
        Assert.That(NumericDate.Read(doc.RootElement.GetProperty("a"), out long a), Is.EqualTo(NumericDateStatus.Ok));
        Assert.That(a, Is.EqualTo(1796158291L));
        Assert.That(NumericDate.Read(doc.RootElement.GetProperty("b"), out _), Is.EqualTo(NumericDateStatus.NotANumber));
        Assert.That(NumericDate.Read(doc.RootElement.GetProperty("c"), out _), Is.EqualTo(NumericDateStatus.OutOfRange));
    }

    [TestCase("{\"sub\":\"a\",\"exp\":1.5e1}", true, NumericDateStatus.Ok, 15L)]
    [TestCase("{\"x\":{\"exp\":1},\"exp\":2}", true, NumericDateStatus.Ok, 2L)]
    [TestCase("{\"e\\u0078p\":3}", true, NumericDateStatus.Ok, 3L)]
    [TestCase("{\"exp\":\"3\"}", true, NumericDateStatus.NotANumber, 0L)]
    [TestCase("{\"exp\":null}", true, NumericDateStatus.NotANumber, 0L)]
    [TestCase("{\"exp\":-1e999}", true, NumericDateStatus.OutOfRange, 0L)]
    [TestCase("{\"nbf\":3}", false, NumericDateStatus.NotANumber, 0L)]
    [TestCase("[{\"exp\":3}]", false, NumericDateStatus.NotANumber, 0L)]
    [TestCase("{\"exp\":", false, NumericDateStatus.NotANumber, 0L)]
    public void Member_of_an_object_is_read_at_the_top_level(string json, bool found, NumericDateStatus status,
        long seconds)
    {
        Assert.That(NumericDate.TryReadMember(Encoding.UTF8.GetBytes(json), "exp"u8, out NumericDateStatus s,
            out long value), Is.EqualTo(found));
        Assert.That(s, Is.EqualTo(status));
        Assert.That(value, Is.EqualTo(seconds));
    }
}
