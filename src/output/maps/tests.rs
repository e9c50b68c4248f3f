//! Expected strings are bpftrace 0.17's stdout for the quoted scripts (after its
//! `Attaching 1 probe...\n\n\n`); tests/map_output_vs_bpftrace.rs re-measures more.

use super::*;

fn int(i: i64) -> Scalar {
    Scalar::Int(i)
}

fn s(v: &str) -> Scalar {
    Scalar::Str(v.into())
}

fn keyed(name: &str, kind: MapKind, entries: Vec<(Vec<Scalar>, MapValue)>) -> MapDump {
    MapDump {
        name: name.into(),
        kind,
        keyed: true,
        entries: entries.into_iter().map(|(k, v)| (k.into(), v)).collect(),
    }
}

fn scalar(name: &str, kind: MapKind, value: Option<MapValue>) -> MapDump {
    MapDump {
        name: name.into(),
        kind,
        keyed: false,
        entries: value.into_iter().map(|v| (Vec::new().into(), v)).collect(),
    }
}

fn text(map: &MapDump, top: usize, div: u64) -> String {
    let mut out = String::new();
    print_text(map, top, div, &mut out);
    out
}

fn json(map: &MapDump, top: usize, div: u64) -> String {
    let mut out = String::new();
    print_json(map, top, div, &mut out);
    out
}

fn hist_of(values: &[i64]) -> MapValue {
    let mut b = vec![0; 65];
    for &v in values {
        b[log2_bucket(v)] += 1;
    }
    MapValue::Hist(b)
}

#[test]
fn hist_table() {
    // BEGIN { @h = hist(-5); @h = hist(0); @h = hist(1); @h = hist(2); @h=hist(3);
    //   @h=hist(4); @h=hist(7); @h=hist(8); @h=hist(1024); @h=hist(1048576); exit(); }
    let m = scalar(
        "@h",
        MapKind::Hist,
        Some(hist_of(&[-5, 0, 1, 2, 3, 4, 7, 8, 1024, 1048576])),
    );
    let one = "1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n";
    let two = "2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n";
    let zero = "0 |                                                    |\n";
    let mut want = String::from("@h: \n");
    for (label, row) in [
        ("(..., 0)", one),
        ("[0]", one),
        ("[1]", one),
        ("[2, 4)", two),
        ("[4, 8)", two),
        ("[8, 16)", one),
        ("[16, 32)", zero),
        ("[32, 64)", zero),
        ("[64, 128)", zero),
        ("[128, 256)", zero),
        ("[256, 512)", zero),
        ("[512, 1K)", zero),
        ("[1K, 2K)", one),
        ("[2K, 4K)", zero),
        ("[4K, 8K)", zero),
        ("[8K, 16K)", zero),
        ("[16K, 32K)", zero),
        ("[32K, 64K)", zero),
        ("[64K, 128K)", zero),
        ("[128K, 256K)", zero),
        ("[256K, 512K)", zero),
        ("[512K, 1M)", zero),
        ("[1M, 2M)", one),
    ] {
        want.push_str(&format!("{label:<23}{row}"));
    }
    want.push('\n');
    assert_eq!(text(&m, 0, 0), want);
    // -f json, BEGIN { @h = hist(-5); @h = hist(0); @h = hist(1); @h = hist(2);
    //   @h=hist(1024); @h=hist(0x7fffffff); @h=hist(1<<40); exit(); }
    let m = scalar(
        "@h",
        MapKind::Hist,
        Some(hist_of(&[-5, 0, 1, 2, 1024, 0x7fff_ffff, 1 << 40])),
    );
    let j = json(&m, 0, 0);
    assert!(j.starts_with(
        "{\"type\": \"hist\", \"data\": {\"@h\": [{\"max\": -1, \"count\": 1}, \
         {\"min\": 0, \"max\": 0, \"count\": 1}, {\"min\": 1, \"max\": 1, \"count\": 1}, \
         {\"min\": 2, \"max\": 3, \"count\": 1}, {\"min\": 4, \"max\": 7, \"count\": 0}, "
    ));
    assert!(j.ends_with(
        "{\"min\": 1073741824, \"max\": 2147483647, \"count\": 1}, \
         {\"min\": -2147483648, \"max\": 0, \"count\": 1}]}}\n"
    ));
}

#[test]
fn print_top_div() {
    // @c[1]=1, @c[2]=2, @c[3]=3 counts; print(@c); print(@c, 2); print(@c, 2, 2);
    // print(@c, 0, 3) printed these.
    let c = keyed(
        "@c",
        MapKind::Count,
        vec![
            (vec![int(3)], MapValue::Count(3)),
            (vec![int(1)], MapValue::Count(1)),
            (vec![int(2)], MapValue::Count(2)),
        ],
    );
    assert_eq!(text(&c, 0, 0), "@c[1]: 1\n@c[2]: 2\n@c[3]: 3\n");
    assert_eq!(text(&c, 2, 0), "@c[2]: 2\n@c[3]: 3\n");
    assert_eq!(text(&c, 2, 2), "@c[2]: 1\n@c[3]: 1\n");
    assert_eq!(text(&c, 0, 3), "@c[1]: 0\n@c[2]: 0\n@c[3]: 1\n");
    // @s[i] = stats(10 * i); print(@s, 1) (top ignored, with a warning).
    let st = keyed(
        "@s",
        MapKind::Stats,
        (1..=3)
            .map(|i| {
                (
                    vec![int(i)],
                    MapValue::Stats {
                        sum: 10 * i,
                        count: 1,
                    },
                )
            })
            .collect(),
    );
    assert_eq!(
        text(&st, 1, 0),
        "@s[1]: count 1, average 10, total 10\n@s[2]: count 1, average 20, total 20\n\
         @s[3]: count 1, average 30, total 30\n\n"
    );
    // @v[1]=avg(10); @v[2]=avg(-20); @v[3]=avg(30); print(@v, 2, 3)
    let v = keyed(
        "@v",
        MapKind::Avg,
        [10, -20, 30]
            .iter()
            .zip(1..)
            .map(|(&x, i)| (vec![int(i)], MapValue::Avg { sum: x, count: 1 }))
            .collect(),
    );
    assert_eq!(text(&v, 2, 3), "@v[1]: 3\n@v[3]: 10\n\n");
    // @h[1]=hist(1); @h[2]=hist(2) x2; @h[3]=hist(100) x3; print(@h, 1, 2)
    let h = keyed(
        "@h",
        MapKind::Hist,
        vec![
            (vec![int(1)], hist_of(&[1])),
            (vec![int(2)], hist_of(&[2, 2])),
            (vec![int(3)], hist_of(&[100, 100, 100])),
        ],
    );
    assert_eq!(
        text(&h, 1, 2),
        "@h[3]: \n[64, 128)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n"
    );
}

#[test]
fn empty_and_zeroed_maps() {
    // clear(@a) etc.: an empty map prints a blank line (two for stats), nothing in JSON.
    for (kind, want) in [
        (MapKind::Plain, "\n"),
        (MapKind::Hist, "\n"),
        (MapKind::Stats, "\n\n"),
    ] {
        let m = keyed("@a", kind, vec![]);
        assert_eq!(text(&m, 0, 0), want);
        assert_eq!(json(&m, 0, 0), "");
    }
    // zero(@h); zero(@s); zero(@v); zero(@m) printed these.
    let h = scalar("@h", MapKind::Hist, Some(MapValue::Hist(vec![0; 65])));
    assert_eq!(text(&h, 0, 0), "@h: \n\n");
    assert_eq!(
        json(&h, 0, 0),
        "{\"type\": \"hist\", \"data\": {\"@h\": []}}\n"
    );
    let zero = MapValue::Stats { sum: 0, count: 0 };
    let st = scalar("@s", MapKind::Stats, Some(zero));
    assert_eq!(text(&st, 0, 0), "@s: count 0, average 0, total 0\n\n");
    assert_eq!(
        json(&st, 0, 0),
        "{\"type\": \"stats\", \"data\": {\"@s\": {\"count\": 0, \"average\": 0, \"total\": 0}}}\n"
    );
    let v = scalar("@v", MapKind::Avg, Some(MapValue::Avg { sum: 0, count: 0 }));
    assert_eq!(
        json(&v, 0, 0),
        "{\"type\": \"stats\", \"data\": {\"@v\": 0}}\n"
    );
    let m = scalar("@m", MapKind::Min, Some(MapValue::Min(merge_min(&[0, 0]))));
    assert_eq!(text(&m, 0, 0), "@m: 0\n");
}

#[test]
fn values_keys_and_json() {
    // @t[1, "a"] = (1, "x\"y"); @t[2, "b"] = (-2, "z"); @u = (1, (2, "q"));
    // @str["k\\1"] = "v\n"; @x[(uint64)-1] = 1
    let t = keyed(
        "@t",
        MapKind::Plain,
        vec![
            (
                vec![int(2), s("b")],
                MapValue::Scalar(Scalar::Tuple(vec![int(-2), s("z")])),
            ),
            (
                vec![int(1), s("a")],
                MapValue::Scalar(Scalar::Tuple(vec![int(1), s("x\"y")])),
            ),
        ],
    );
    assert_eq!(text(&t, 0, 0), "@t[1, a]: (1, x\"y)\n@t[2, b]: (-2, z)\n");
    assert_eq!(
        json(&t, 0, 0),
        "{\"type\": \"map\", \"data\": {\"@t\": {\"1,a\": [1,\"x\\\"y\"], \"2,b\": [-2,\"z\"]}}}\n"
    );
    let u = Scalar::Tuple(vec![int(1), Scalar::Tuple(vec![int(2), s("q")])]);
    let u = scalar("@u", MapKind::Plain, Some(MapValue::Scalar(u)));
    assert_eq!(text(&u, 0, 0), "@u: (1, (2, q))\n");
    assert_eq!(
        json(&u, 0, 0),
        "{\"type\": \"map\", \"data\": {\"@u\": [1,[2,\"q\"]]}}\n"
    );
    let st = keyed(
        "@str",
        MapKind::Plain,
        vec![(vec![s("k\\1")], MapValue::Scalar(s("v\n")))],
    );
    assert_eq!(text(&st, 0, 0), "@str[k\\1]: v\n\n");
    assert_eq!(
        json(&st, 0, 0),
        "{\"type\": \"map\", \"data\": {\"@str\": {\"k\\\\1\": \"v\\n\"}}}\n"
    );
    let x = keyed(
        "@x",
        MapKind::Plain,
        vec![(vec![Scalar::UInt(u64::MAX)], MapValue::Scalar(int(1)))],
    );
    assert_eq!(text(&x, 0, 0), "@x[-1]: 1\n");
}

#[test]
fn key_orders() {
    // @s[1]="x"; @s[-2]="y"; @s[3]="z"; @s[256]="w"; @s[0]="v"; @t["b"]..@t[""]
    // printed @s[0] @s[1] @s[3] @s[256] @s[-2] and @t[] @t[a] @t[ab] @t[b].
    let m = keyed(
        "@s",
        MapKind::Plain,
        [(-2, "y"), (256, "w"), (1, "x"), (0, "v"), (3, "z")]
            .iter()
            .map(|&(k, v)| (vec![int(k)], MapValue::Scalar(s(v))))
            .collect(),
    );
    assert_eq!(
        text(&m, 0, 0),
        "@s[0]: v\n@s[1]: x\n@s[3]: z\n@s[256]: w\n@s[-2]: y\n"
    );
    let m = keyed(
        "@t",
        MapKind::Plain,
        ["b", "ab", "", "a"]
            .iter()
            .map(|&k| (vec![s(k)], MapValue::Scalar(s("1"))))
            .collect(),
    );
    assert_eq!(text(&m, 0, 0), "@t[]: 1\n@t[a]: 1\n@t[ab]: 1\n@t[b]: 1\n");
}

#[test]
fn exit_order() {
    // BEGIN { @b = 1; exit(); } END { @a = 2; } interval:s:100 { @x = 1; @B = 3; @_ = 4; }
    // printed (after "\n\n") "\n\n@a: 2\n@b: 1\n\n": empty @B, @_, @x as blank lines.
    let one = |name: &str, v: Option<i64>| {
        scalar(name, MapKind::Plain, v.map(|v| MapValue::Scalar(int(v))))
    };
    let maps = [
        one("@x", None),
        one("@b", Some(1)),
        one("@a", Some(2)),
        one("@_", None),
        one("@B", None),
    ];
    let mut out = String::new();
    print_all_at_exit(&maps, &mut out, false);
    assert_eq!(out, "\n\n@a: 2\n@b: 1\n\n");
    let mut out = String::new();
    print_all_at_exit(&maps, &mut out, true);
    assert_eq!(
        out,
        "{\"type\": \"map\", \"data\": {\"@a\": 2}}\n{\"type\": \"map\", \"data\": {\"@b\": 1}}\n"
    );
}

#[test]
fn print_value_as_bpftrace() {
    use crate::event::{ArgLayout, ValueLayout};
    // bpftrace 0.17: `print(((int8)-1, (uint64)-1, (uint16)7, "a"))` printed
    // `(-1, 18446744073709551615, 7, a)`; with -f json
    // `{"type": "value", "data": [-1,18446744073709551615,7,"a"]}`.
    let at = |offset, value| ArgLayout { offset, value };
    let layout = ValueLayout::Tuple {
        size: 24,
        elems: vec![
            at(
                0,
                ValueLayout::Int {
                    size: 1,
                    signed: true,
                },
            ),
            at(
                8,
                ValueLayout::Int {
                    size: 8,
                    signed: false,
                },
            ),
            at(
                16,
                ValueLayout::Int {
                    size: 2,
                    signed: false,
                },
            ),
            at(18, ValueLayout::Str { size: 2 }),
        ],
    };
    let mut bytes = vec![0u8; 24];
    bytes[0] = 0xff;
    bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    bytes[16] = 7;
    bytes[18] = b'a';
    let value = decode(&layout, &bytes, true);
    let (mut text, mut json) = (String::new(), String::new());
    print_value(&value, false, &mut text);
    print_value(&value, true, &mut json);
    assert_eq!(text, "(-1, 18446744073709551615, 7, a)\n");
    assert_eq!(
        json,
        "{\"type\": \"value\", \"data\": [-1,18446744073709551615,7,\"a\"]}\n"
    );
}

#[test]
fn records_print_as_bpftrace() {
    use crate::event::{ArgLayout, ValueLayout};
    // bpftrace 0.17 over the bytes "/dev/null\0/dev/zero": `struct S { int a; char b[4];
    // short c[2]; }` printed `{ .a = 1986356271, .b = /nul, .c = [108,25647] }`, in
    // JSON `{ "a": 1986356271, "b": "/nul", "c": [108,25647] }`, as a key
    // `{.a=1986356271,.b=/nul,.c=[108,25647]}`; a pointer member in a key as hex
    // (`struct P { char *p; ... }`: `{.p=0x6c756e2f7665642f,...}`).
    let at = |offset, value| ArgLayout { offset, value };
    let short = || ValueLayout::Int {
        size: 2,
        signed: true,
    };
    let layout = ValueLayout::Struct {
        size: 12,
        fields: vec![
            (
                "a".into(),
                at(
                    0,
                    ValueLayout::Int {
                        size: 4,
                        signed: true,
                    },
                ),
            ),
            ("b".into(), at(4, ValueLayout::Str { size: 4 })),
            (
                "c".into(),
                at(
                    8,
                    ValueLayout::Array {
                        size: 4,
                        elems: vec![at(0, short()), at(2, short())],
                    },
                ),
            ),
        ],
    };
    let bytes = b"/dev/null\0/dev/zero\0";
    let value = decode(&layout, &bytes[..12], true);
    let (mut text, mut json) = (String::new(), String::new());
    print_value(&value, false, &mut text);
    print_value(&value, true, &mut json);
    assert_eq!(text, "{ .a = 1986356271, .b = /nul, .c = [108,25647] }\n");
    assert_eq!(
        json,
        "{\"type\": \"value\", \"data\": { \"a\": 1986356271, \"b\": \"/nul\", \"c\": [108,25647] }}\n"
    );
    let key = decode(&layout, &bytes[..12], false);
    assert_eq!(key_text(&key), "{.a=1986356271,.b=/nul,.c=[108,25647]}");
    let pointer = ValueLayout::Struct {
        size: 8,
        fields: vec![("p".into(), at(0, ValueLayout::Pointer))],
    };
    let key = decode(&pointer, &bytes[..8], false);
    assert_eq!(key_text(&key), "{.p=0x6c756e2f7665642f}");
    let mut text = String::new();
    print_value(&decode(&pointer, &bytes[..8], true), false, &mut text);
    assert_eq!(text, "{ .p = 7815273878500238383 }\n");
}

#[test]
fn integers_print_as_std_formats_them() {
    for v in [0, 1, 9, 10, 99, 1234567890, i64::MAX, i64::MIN, -1, -10] {
        let mut out = String::new();
        text::push_i64(&mut out, v);
        assert_eq!(out, v.to_string());
    }
    for v in [0, 7, 10, 18446744073709551615u64] {
        let mut out = String::from("x");
        text::push_u64(&mut out, v);
        assert_eq!(out, format!("x{v}"));
    }
}
