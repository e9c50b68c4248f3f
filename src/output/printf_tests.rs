//! Expectations measured with bpftrace v0.17.0 on the development host; each test names
//! the script it ran (all inside `BEGIN { ...; exit(); }`). Integer literals are `int64`
//! in bpftrace, so they are passed here as signed 8-byte values.

use super::*;

fn s64(v: i64) -> Arg<'static> {
    Arg::int(&v.to_le_bytes(), true)
}

fn fmt(f: &str, args: &[Arg]) -> String {
    let format = PrintfFormat::parse(f).unwrap();
    String::from_utf8(render(&format, args).to_vec()).unwrap()
}

#[test]
fn reference_line() {
    // printf("%5d|%-5d|%05d|%x|%X|%lu|%s|%-4s|%c|%%|%o\n", 42,42,42,255,255,123456789012,"str","ab",65,8)
    let args = [
        s64(42),
        s64(42),
        s64(42),
        s64(255),
        s64(255),
        s64(123456789012),
        Arg::Str(b"str"),
        Arg::Str(b"ab"),
        s64(65),
        s64(8),
    ];
    assert_eq!(
        fmt("%5d|%-5d|%05d|%x|%X|%lu|%s|%-4s|%c|%%|%o\n", &args),
        "   42|42   |00042|ff|FF|123456789012|str|ab  |A|%|10\n"
    );
}

#[test]
fn trailing_percent_is_printed_raw() {
    // printf("100%%\n")  ->  100%%
    assert_eq!(fmt("100%%\n", &[]), "100%%\n");
    // printf("%d %%\n", 1)  ->  1 %%
    assert_eq!(fmt("%d %%\n", &[s64(1)]), "1 %%\n");
    // printf("%5%|x\n")  ->  %5%|x
    assert_eq!(fmt("%5%|x\n", &[]), "%5%|x\n");
}

#[test]
fn integer_sizes_and_signedness() {
    let f = "%d|%u|%x|%ld|%lu|%lx\n";
    // printf(f, (uint32)-1 x6)
    let u32max = Arg::int(&u32::MAX.to_le_bytes(), false);
    assert_eq!(
        fmt(f, &[u32max; 6]),
        "-1|4294967295|ffffffff|4294967295|4294967295|ffffffff\n"
    );
    // printf(f, (int8)-1 x6)
    let m1 = Arg::int(&[0xff], true);
    assert_eq!(
        fmt(f, &[m1; 6]),
        "-1|4294967295|ffffffff|-1|18446744073709551615|ffffffffffffffff\n"
    );
    // printf(f, (int32)-5 x6)
    let m5 = Arg::int(&(-5i32).to_le_bytes(), true);
    assert_eq!(
        fmt(f, &[m5; 6]),
        "-5|4294967291|fffffffb|-5|18446744073709551611|fffffffffffffffb\n"
    );
    // printf("%d|%u|%x|%hd|%hhd|%hu\n", (uint16)65535 x6)
    let u16max = Arg::int(&[0xff, 0xff], false);
    assert_eq!(
        fmt("%d|%u|%x|%hd|%hhd|%hu\n", &[u16max; 6]),
        "65535|65535|ffff|-1|-1|65535\n"
    );
    // printf(f, 123456789012 x6)
    assert_eq!(
        fmt(f, &[s64(123456789012); 6]),
        "-1097262572|3197704724|be991a14|123456789012|123456789012|1cbe991a14\n"
    );
    // printf("%u|%d|%x\n", 255, 255, 255)
    assert_eq!(fmt("%u|%d|%x\n", &[s64(255); 3]), "255|255|ff\n");
}

#[test]
fn length_modifiers() {
    // printf("%hhx|%hho|%ho|%o|%lo|%jd|%zd|%td|%zu|%lld|%llx|%X\n", -1 x12)
    assert_eq!(
        fmt("%hhx|%hho|%ho|%o|%lo|%jd|%zd|%td|%zu|%lld|%llx|%X\n", &[s64(-1); 12]),
        "ff|377|177777|37777777777|1777777777777777777777|-1|-1|-1|18446744073709551615|-1|ffffffffffffffff|FFFFFFFF\n"
    );
}

#[test]
fn pointers() {
    // printf("%p|%p|%lp\n", 0, 4096, 255)
    assert_eq!(
        fmt("%p|%p|%lp\n", &[s64(0), s64(4096), s64(255)]),
        "(nil)|0x1000|0xff\n"
    );
    // printf("%08p|%-8p|%8p|%.4p|%p|%20p|\n", 255, 255, 0, 255, -1, 0)
    let args = [s64(255), s64(255), s64(0), s64(255), s64(-1), s64(0)];
    assert_eq!(
        fmt("%08p|%-8p|%8p|%.4p|%p|%20p|\n", &args),
        "0x0000ff|0xff    |   (nil)|0x00ff|0xffffffffffffffff|               (nil)|\n"
    );
    // printf("%08p|%-08p|%.3p|%3.1p|%.0p|\n", 0, 0, 0, 1, 0)
    let args = [s64(0), s64(0), s64(0), s64(1), s64(0)];
    assert_eq!(
        fmt("%08p|%-08p|%.3p|%3.1p|%.0p|\n", &args),
        "   (nil)|(nil)   |(nil)|0x1|(nil)|\n"
    );
}

#[test]
fn chars() {
    // printf("%c|%c|%c\n", 256+66, 0x263a, 9)
    assert_eq!(
        fmt("%c|%c|%c\n", &[s64(322), s64(0x263a), s64(9)]),
        "B|:|\t\n"
    );
    // printf("%05c|%-3c|%3c|\n", 65, 65, 65)
    assert_eq!(fmt("%05c|%-3c|%3c|\n", &[s64(65); 3]), "    A|A  |  A|\n");
    // printf("a%cb\n", 0)  ->  ab   (bpftrace prints each snprintf piece up to its NUL)
    assert_eq!(fmt("a%cb\n", &[s64(0)]), "ab\n");
    // printf("%c|%5c|%-5c|x\n", 0, 0, 0)  ->  |    ||x
    assert_eq!(fmt("%c|%5c|%-5c|x\n", &[s64(0); 3]), "|    ||x\n");
}

#[test]
fn precision_and_zero_flag() {
    // printf("%.3d|%8.3d|%-8.3d|%.0d|\n", 5, 5, 5, 0)
    assert_eq!(
        fmt(
            "%.3d|%8.3d|%-8.3d|%.0d|\n",
            &[s64(5), s64(5), s64(5), s64(0)]
        ),
        "005|     005|005     ||\n"
    );
    // printf("%-05d|%005d|%0d|%.5x|%08.3d|%-8.3x|\n", -42, -42, 7, 255, -7, 255)
    let args = [s64(-42), s64(-42), s64(7), s64(255), s64(-7), s64(255)];
    assert_eq!(
        fmt("%-05d|%005d|%0d|%.5x|%08.3d|%-8.3x|\n", &args),
        "-42  |-0042|7|000ff|    -007|0ff     |\n"
    );
    // printf("%.10d|%.3s|%s|\n", -123, "abcdef", "")
    assert_eq!(
        fmt(
            "%.10d|%.3s|%s|\n",
            &[s64(-123), Arg::Str(b"abcdef"), Arg::Str(b"")]
        ),
        "-0000000123|abc||\n"
    );
    // printf("%5.0d|%.0x|%.0o|\n", 0, 0, 0)
    assert_eq!(fmt("%5.0d|%.0x|%.0o|\n", &[s64(0); 3]), "     |||\n");
}

#[test]
fn strings() {
    // printf("%.2s|%8.2s|%-8.2s|\n", "hello" x3)
    assert_eq!(
        fmt("%.2s|%8.2s|%-8.2s|\n", &[Arg::Str(b"hello"); 3]),
        "he|      he|he      |\n"
    );
    // printf("%05s|%-5s|%5s|%.0s|%3.1s|\n", "ab" x5)
    assert_eq!(
        fmt("%05s|%-5s|%5s|%.0s|%3.1s|\n", &[Arg::Str(b"ab"); 5]),
        "   ab|ab   |   ab||  a|\n"
    );
}

#[test]
fn c_flags_bpftrace_cannot_parse() {
    // bpftrace 0.17 rejects `+`, ` `, `#` ("Too many arguments"), so these follow C,
    // measured with coreutils: printf '%+d|% d|%#x|%#o|%#X|%+5d\n' 5 5 255 8 255 -3
    let spec = |plus, space, alt, width, conv| ConvSpec {
        plus,
        space,
        alt,
        width,
        conv,
        ..Default::default()
    };
    let mut out = Rendered::default();
    for (s, v) in [
        (spec(true, false, false, None, 'd'), 5),
        (spec(false, true, false, None, 'd'), 5),
        (spec(false, false, true, None, 'x'), 255),
        (spec(false, false, true, None, 'o'), 8),
        (spec(false, false, true, None, 'X'), 255),
        (spec(true, false, false, Some(5), 'd'), -3),
    ] {
        convert(&s, &s64(v), &mut out);
        out.push(b"|");
    }
    assert_eq!(
        String::from_utf8(out.to_vec()).unwrap(),
        "+5| 5|0xff|010|0XFF|   -3|"
    );
}

#[test]
fn huge_widths_cost_no_memory() {
    // bpftrace 0.17 prints printf("%1000000000d|\n", 1) as 999999999 spaces, `1|` and a
    // newline (`| wc -c` counted 1000000025 bytes: 21 for `Attaching 1 probe...\n`, 2 for
    // the closing newlines); the padding stays a count here.
    let f = PrintfFormat::parse("%1000000000d|\n").unwrap();
    let r = render(&f, &[s64(1)]);
    assert_eq!(r.len(), 1_000_000_002);
    assert_eq!(r.after_last_newline(), Some(1_000_000_002));
    let f = PrintfFormat::parse("%-.2000000000d|").unwrap();
    let r = render(&f, &[s64(-7)]);
    assert_eq!(r.len(), 2_000_000_002);
    let mut head = Vec::new();
    r.write_range(&mut head, 0, 4).unwrap();
    assert_eq!(head, b"-000");
    let mut tail = Vec::new();
    r.write_range(&mut tail, 2_000_000_000, usize::MAX).unwrap();
    assert_eq!(tail, b"7|");
}
