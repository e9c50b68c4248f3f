//! The map printer (rbt::output::maps) against the real bpftrace 0.17: each case is a
//! BEGIN-only script whose maps hold known constants, and the MapDumps the kernel side
//! would read for it; bpftrace's whole stdout (text and `-f json`) must equal the
//! announcement, the `print()` output, `"\n\n"` and `print_all_at_exit` of those dumps.
//! Needs root and bpftrace 0.17 (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use rbt::output::maps::{
    linear_bucket, log2_bucket, merge_min, print_all_at_exit, print_json, print_text, MapDump,
    MapKind, MapValue, Scalar,
};

/// What BEGIN prints before exit, in order.
enum Event {
    Printf(&'static str),
    /// `print(@x, top, div)`.
    Print(MapDump, usize, u64),
}

struct Case {
    script: String,
    events: Vec<Event>,
    exit: Vec<MapDump>,
}

fn case(script: impl Into<String>, events: Vec<Event>, exit: Vec<MapDump>) -> Case {
    Case {
        script: format!("BEGIN {{ {} exit(); }}", script.into()),
        events,
        exit,
    }
}

fn i(v: i64) -> Scalar {
    Scalar::Int(v)
}

fn s(v: &str) -> Scalar {
    Scalar::Str(v.to_string())
}

fn int(v: i64) -> MapValue {
    MapValue::Scalar(i(v))
}

fn keyed(name: &str, kind: MapKind, entries: Vec<(Vec<Scalar>, MapValue)>) -> MapDump {
    MapDump {
        name: name.to_string(),
        kind,
        keyed: true,
        entries: entries.into_iter().map(|(k, v)| (k.into(), v)).collect(),
    }
}

fn single(name: &str, kind: MapKind, value: MapValue) -> MapDump {
    MapDump {
        name: name.to_string(),
        kind,
        keyed: false,
        entries: vec![(Vec::new().into(), value)],
    }
}

fn empty(name: &str, kind: MapKind, keyed: bool) -> MapDump {
    MapDump {
        name: name.to_string(),
        kind,
        keyed,
        entries: vec![],
    }
}

/// Integer-keyed map: `(key, value)` pairs.
fn by_int(name: &str, kind: MapKind, kv: &[(i64, MapValue)]) -> MapDump {
    keyed(
        name,
        kind,
        kv.iter().map(|(k, v)| (vec![i(*k)], v.clone())).collect(),
    )
}

fn hist(values: &[i64]) -> MapValue {
    let mut b = vec![0; 65];
    for &v in values {
        b[log2_bucket(v)] += 1;
    }
    MapValue::Hist(b)
}

fn lhist(values: &[i64], min: i64, max: i64, step: i64) -> MapValue {
    let mut b = vec![0; 1002];
    for &v in values {
        b[linear_bucket(v, min, max, step)] += 1;
    }
    MapValue::Lhist {
        min,
        max,
        step,
        buckets: b,
    }
}

/// `min()` as one CPU stores it (0xffffffff - v), merged with an idle CPU.
fn min(v: i64) -> MapValue {
    MapValue::Min(merge_min(&[0xffff_ffff - v, 0]))
}

fn avg(values: &[i64]) -> (i64, u64) {
    (values.iter().sum(), values.len() as u64)
}

fn cases() -> Vec<Case> {
    use MapKind::*;
    let mut out = vec![];
    // count, keyed and keyless
    out.push(case(
        "@c[1]=count(); @c[2]=count(); @c[2]=count(); @c[3]=count(); @c[3]=count(); \
         @c[3]=count(); @n = count();",
        vec![],
        vec![
            by_int(
                "@c",
                Count,
                &[
                    (3, MapValue::Count(3)),
                    (1, MapValue::Count(1)),
                    (2, MapValue::Count(2)),
                ],
            ),
            single("@n", Count, MapValue::Count(1)),
        ],
    ));
    // sum, signed and unsigned
    out.push(case(
        "@s[1] = sum(-7); @s[2] = sum(3); @s[3] = sum(10); @s[3] = sum(-1); \
         @u = sum((uint64)5); @big = sum((uint64)-1);",
        vec![],
        vec![
            by_int(
                "@s",
                Sum,
                &[
                    (2, MapValue::Sum(3)),
                    (3, MapValue::Sum(9)),
                    (1, MapValue::Sum(-7)),
                ],
            ),
            single("@u", Sum, MapValue::USum(5)),
            single("@big", Sum, MapValue::USum(u64::MAX)),
        ],
    ));
    // avg: signed integer division
    let (a1, a2, z) = (avg(&[10, -25]), avg(&[7]), avg(&[-7, 2]));
    let av = |(sum, count): (i64, u64)| MapValue::Avg { sum, count };
    out.push(case(
        "@a[1]=avg(10); @a[1]=avg(-25); @a[2]=avg(7); @z = avg(-7); @z = avg(2);",
        vec![],
        vec![
            by_int("@a", Avg, &[(2, av(a2)), (1, av(a1))]),
            single("@z", Avg, av(z)),
        ],
    ));
    // min/max, incl. the entries bpftrace never creates
    out.push(case(
        "@mn[1]=min(-3); @mn[2]=min(5); @mn[3]=min(0); @mx[1]=max(-3); @mx[2]=max(7); \
         @mx[3]=max(0); @big = min(0x100000000); @m1 = min(0x7fffffff);",
        vec![],
        vec![
            by_int("@mn", Min, &[(2, min(5)), (1, min(-3)), (3, min(0))]),
            by_int("@mx", Max, &[(2, MapValue::Max(7)), (3, MapValue::Max(0))]),
            empty("@big", Min, false),
            single("@m1", Min, min(0x7fff_ffff)),
        ],
    ));
    // stats, sorted by average
    let st = |v: &[i64]| {
        let (sum, count) = avg(v);
        MapValue::Stats { sum, count }
    };
    out.push(case(
        "@st[1]=stats(5); @st[1]=stats(-8); @st[2]=stats(100); @st[3]=stats(-50); \
         @s0 = stats(3);",
        vec![],
        vec![
            by_int(
                "@st",
                Stats,
                &[(2, st(&[100])), (1, st(&[5, -8])), (3, st(&[-50]))],
            ),
            single("@s0", Stats, st(&[3])),
        ],
    ));
    // hist labels: negative, zero, one, K, M, and everything >= 2^31 in [2G, 4G)
    let hv = [
        -5,
        0,
        1,
        2,
        3,
        4,
        7,
        8,
        1024,
        1048576,
        0x7fff_ffff,
        1 << 40,
        i64::MAX,
    ];
    let hs: String = hv.iter().map(|v| format!("@h = hist({v}); ")).collect();
    out.push(case(
        format!("{hs} @one = hist(1 << 20);"),
        vec![],
        vec![
            single("@h", Hist, hist(&hv)),
            single("@one", Hist, hist(&[1 << 20])),
        ],
    ));
    // keyed hists: 20 keys, equal totals (libstdc++ sort order), ints in key-byte order
    let keys: Vec<i64> = (0..20)
        .map(|n| [1, 256, 2, 513, -1][n % 5] + 1000 * (n as i64 / 5))
        .collect();
    let hs: String = keys
        .iter()
        .map(|k| format!("@h[{k}] = hist({}); ", k.rem_euclid(300)))
        .collect();
    out.push(case(
        format!("{hs} @g[\"b\", 1] = hist(5); @g[\"a\", 2] = hist(5); @g[\"ab\", 0] = hist(9);"),
        vec![],
        vec![
            keyed(
                "@g",
                Hist,
                vec![
                    (vec![s("b"), i(1)], hist(&[5])),
                    (vec![s("ab"), i(0)], hist(&[9])),
                    (vec![s("a"), i(2)], hist(&[5])),
                ],
            ),
            by_int(
                "@h",
                Hist,
                &keys
                    .iter()
                    .map(|&k| (k, hist(&[k.rem_euclid(300)])))
                    .collect::<Vec<_>>(),
            ),
        ],
    ));
    // lhist: under/overflow, a step not dividing the range, K and M labels
    let lh = |name: &str, vals: &[i64], min: i64, max: i64, step: i64| {
        let script: String = vals
            .iter()
            .map(|v| format!("{name} = lhist({v}, {min}, {max}, {step}); "))
            .collect();
        (script, single(name, Lhist, lhist(vals, min, max, step)))
    };
    let parts = [
        lh("@l", &[-3, 0, 99, 100, 150, 55, 55], 0, 100, 10),
        lh("@p", &[1, 9, 10], 0, 10, 3),
        lh("@n", &[-7, 10, 29, 31], 10, 30, 5),
        lh("@k", &[2048, 0, 8000], 0, 4096, 1024),
        lh("@m", &[5000000, 1048576], 0, 2097152, 1048576),
    ];
    out.push(case(
        parts.iter().map(|p| p.0.as_str()).collect::<String>(),
        vec![],
        parts.into_iter().map(|p| p.1).collect(),
    ));
    // multi-key with strings, plain int values sorted by value
    out.push(case(
        "@t[1, \"a\"] = 5; @t[1, \"b\"] = 3; @t[-1, \"a\"] = 4; @t[2, \"\"] = -9;",
        vec![],
        vec![keyed(
            "@t",
            Plain,
            vec![
                (vec![i(1), s("a")], int(5)),
                (vec![i(1), s("b")], int(3)),
                (vec![i(-1), s("a")], int(4)),
                (vec![i(2), s("")], int(-9)),
            ],
        )],
    ));
    // string values: sorted by key (ints unsigned, strings bytewise)
    out.push(case(
        "@s[1]=\"x\"; @s[-2]=\"y\"; @s[3]=\"z\"; @s[256]=\"w\"; @s[0]=\"v\"; \
         @t[\"b\"]=\"1\"; @t[\"a\"]=\"2\"; @t[\"ab\"]=\"3\"; @t[\"\"]=\"4\"; @v = \"scalar\";",
        vec![],
        vec![
            by_int(
                "@s",
                Plain,
                &[
                    (-2, MapValue::Scalar(s("y"))),
                    (256, MapValue::Scalar(s("w"))),
                    (1, MapValue::Scalar(s("x"))),
                    (3, MapValue::Scalar(s("z"))),
                    (0, MapValue::Scalar(s("v"))),
                ],
            ),
            keyed(
                "@t",
                Plain,
                [("ab", "3"), ("b", "1"), ("", "4"), ("a", "2")]
                    .iter()
                    .map(|(k, v)| (vec![s(k)], MapValue::Scalar(s(v))))
                    .collect(),
            ),
            single("@v", Plain, MapValue::Scalar(s("scalar"))),
        ],
    ));
    // tuple values, nested, with div applied to their ints
    let tup = |a: i64, b: &str| MapValue::Scalar(Scalar::Tuple(vec![i(a), s(b)]));
    let t = keyed(
        "@t",
        Plain,
        vec![
            (vec![i(2), s("b")], tup(-21, "z")),
            (vec![i(1), s("a")], tup(11, "x\"y")),
        ],
    );
    let u = Scalar::Tuple(vec![i(1), Scalar::Tuple(vec![i(2), s("q")])]);
    out.push(case(
        "@t[1, \"a\"] = (11, \"x\\\"y\"); @t[2, \"b\"] = (-21, \"z\"); @u = (1, (2, \"q\")); \
         print(@t, 0, 2);",
        vec![Event::Print(t.clone(), 0, 2)],
        vec![t, single("@u", Plain, MapValue::Scalar(u))],
    ));
    // plain ints: negative, unsigned, narrow
    out.push(case(
        "@i[1] = -5; @i[2] = 10; @i[-3] = 0; @y = (uint64)-1; @w = (int8)-1; \
         @x[(uint64)-1] = 1; @k[(int32)-5, (uint16)7] = 1;",
        vec![],
        vec![
            by_int("@i", Plain, &[(2, int(10)), (-3, int(0)), (1, int(-5))]),
            single("@y", Plain, MapValue::Scalar(Scalar::UInt(u64::MAX))),
            single("@w", Plain, int(-1)),
            keyed("@x", Plain, vec![(vec![Scalar::UInt(u64::MAX)], int(1))]),
            keyed("@k", Plain, vec![(vec![i(-5), i(7)], int(1))]),
        ],
    ));
    // print(@x), print(@x, 2), print(@x, 2, 10)
    let c = by_int(
        "@c",
        Sum,
        &[
            (1, MapValue::Sum(25)),
            (2, MapValue::Sum(-37)),
            (3, MapValue::Sum(10)),
            (4, MapValue::Sum(99)),
        ],
    );
    let x = single("@x", Plain, int(7));
    out.push(case(
        "@x = 7; @c[1] = sum(25); @c[2] = sum(-37); @c[3] = sum(10); @c[4] = sum(99); \
         print(@x); print(@c); print(@c, 2); print(@c, 2, 10); print(@c, 0, 4); print(@x, 0, 2);",
        vec![
            Event::Print(x.clone(), 0, 0),
            Event::Print(c.clone(), 0, 0),
            Event::Print(c.clone(), 2, 0),
            Event::Print(c.clone(), 2, 10),
            Event::Print(c.clone(), 0, 4),
            Event::Print(x.clone(), 0, 2),
        ],
        vec![c, x],
    ));
    // print() of hist/lhist/avg/stats with top and div
    let h = by_int(
        "@h",
        Hist,
        &[
            (1, hist(&[1])),
            (2, hist(&[2, 2])),
            (3, hist(&[100, 100, 100, 5])),
        ],
    );
    let l = single("@l", Lhist, lhist(&[1, 1, 1, 5], 0, 10, 2));
    let v = by_int(
        "@v",
        Avg,
        &[
            (1, av(avg(&[10]))),
            (2, av(avg(&[-20]))),
            (3, av(avg(&[30]))),
        ],
    );
    let stt = by_int(
        "@s",
        Stats,
        &[(1, st(&[10])), (2, st(&[20])), (3, st(&[30]))],
    );
    out.push(case(
        "@h[1]=hist(1); @h[2]=hist(2); @h[2]=hist(2); @h[3]=hist(100); @h[3]=hist(100); \
         @h[3]=hist(100); @h[3]=hist(5); @l = lhist(1, 0, 10, 2); @l = lhist(1, 0, 10, 2); \
         @l = lhist(1, 0, 10, 2); @l = lhist(5, 0, 10, 2); @v[1]=avg(10); @v[2]=avg(-20); \
         @v[3]=avg(30); @s[1]=stats(10); @s[2]=stats(20); @s[3]=stats(30); \
         print(@h, 1, 2); print(@h, 0, 3); print(@l, 0, 2); print(@v, 2, 3); print(@s, 1, 5);",
        vec![
            Event::Print(h.clone(), 1, 2),
            Event::Print(h.clone(), 0, 3),
            Event::Print(l.clone(), 0, 2),
            Event::Print(v.clone(), 2, 3),
            Event::Print(stt.clone(), 1, 5),
        ],
        vec![h, l, v, stt],
    ));
    // printf before, two maps defined out of order
    out.push(case(
        "printf(\"hi\\n\"); @b = 1; @a = 2; @B = 3; @_ = 4; @ = 5;",
        vec![Event::Printf("hi\n")],
        ["@b", "@a", "@B", "@_", "@"]
            .iter()
            .zip(1..)
            .map(|(n, v)| single(n, Plain, int(v)))
            .collect(),
    ));
    // clear() and delete(): empty maps, except the keyless count array, which is zeroed
    out.push(case(
        "@a[1] = 1; @b = count(); @c[1] = count(); @h = hist(3); @s = stats(3); \
         @z[1] = 5; @v = avg(1); @l[1] = lhist(3, 0, 10, 1); clear(@a); clear(@b); clear(@c); \
         clear(@h); clear(@s); delete(@z[1]); clear(@v); clear(@l);",
        vec![],
        vec![
            empty("@a", Plain, true),
            single("@b", Count, MapValue::Count(0)),
            empty("@c", Count, true),
            empty("@h", Hist, false),
            empty("@s", Stats, false),
            empty("@z", Plain, true),
            empty("@v", Avg, false),
            empty("@l", Lhist, true),
        ],
    ));
    // zero(): every slot 0
    let zl = MapValue::Lhist {
        min: 0,
        max: 10,
        step: 1,
        buckets: vec![0; 1002],
    };
    out.push(case(
        "@a[1] = 1; @b = count(); @c[1] = count(); @h = hist(3); @s = stats(3); @v = avg(4); \
         @l = lhist(3, 0, 10, 1); @m = min(3); @x = max(3); @u = sum(4); zero(@a); zero(@b); \
         zero(@c); zero(@h); zero(@s); zero(@v); zero(@l); zero(@m); zero(@x); zero(@u);",
        vec![],
        vec![
            by_int("@a", Plain, &[(1, int(0))]),
            single("@b", Count, MapValue::Count(0)),
            by_int("@c", Count, &[(1, MapValue::Count(0))]),
            single("@h", Hist, MapValue::Hist(vec![0; 65])),
            single("@s", Stats, MapValue::Stats { sum: 0, count: 0 }),
            single("@v", Avg, MapValue::Avg { sum: 0, count: 0 }),
            single("@l", Lhist, zl),
            single("@m", Min, MapValue::Min(merge_min(&[0, 0]))),
            single("@x", Max, MapValue::Max(0)),
            single("@u", Sum, MapValue::Sum(0)),
        ],
    ));
    // escaping of names, keys and values; non-ASCII bytes
    out.push(case(
        "@e[\"q\\\"b\\\\s\\tt\\nn\\x01\"] = \"v\\\"\\\\\\t\\r\\x1f\"; @u[\"\u{e9}\"] = \"\u{e9}\"; @ = count();",
        vec![],
        vec![
            keyed(
                "@e",
                Plain,
                vec![(
                    vec![s("q\"b\\s\tt\nn\x01")],
                    MapValue::Scalar(s("v\"\\\t\r\x1f")),
                )],
            ),
            keyed("@u", Plain, vec![(vec![s("\u{e9}")], MapValue::Scalar(s("\u{e9}")))]),
            single("@", Count, MapValue::Count(1)),
        ],
    ));
    // more than 16 entries sorted by value; sums given in a scrambled order
    let vals: Vec<(i64, i64)> = (0..24).map(|k| (k, (k * 7919) % 97 - 40)).collect();
    let script: String = vals
        .iter()
        .map(|(k, v)| format!("@s[{k}] = sum({v}); "))
        .collect();
    let mut scrambled = vals.clone();
    scrambled.reverse();
    out.push(case(
        script,
        vec![],
        vec![by_int(
            "@s",
            Sum,
            &scrambled
                .iter()
                .map(|&(k, v)| (k, MapValue::Sum(v)))
                .collect::<Vec<_>>(),
        )],
    ));
    // 20 avg keys with equal averages, and stats ties: key-byte order through std::sort
    let keys: Vec<i64> = (0..20).map(|n| (n * 37) % 300 - 100).collect();
    let script: String = keys
        .iter()
        .map(|k| format!("@v[{k}] = avg(6); @w[{k}, \"s\"] = stats({}); ", k % 3))
        .collect();
    out.push(case(
        script,
        vec![],
        vec![
            by_int(
                "@v",
                Avg,
                &keys.iter().map(|&k| (k, av(avg(&[6])))).collect::<Vec<_>>(),
            ),
            keyed(
                "@w",
                Stats,
                keys.iter()
                    .map(|&k| (vec![i(k), s("s")], st(&[k % 3])))
                    .collect(),
            ),
        ],
    ));
    out
}

/// What bpftrace prints for `case`, per our printer.
fn expected(case: &Case, json: bool) -> String {
    let mut out = String::from(if json {
        "{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}\n"
    } else {
        "Attaching 1 probe...\n"
    });
    for e in &case.events {
        match (e, json) {
            (Event::Printf(t), false) => out.push_str(t),
            (Event::Printf(t), true) => out.push_str(&format!(
                "{{\"type\": \"printf\", \"data\": \"{}\"}}\n",
                t.replace('\n', "\\n")
            )),
            (Event::Print(m, top, div), false) => print_text(m, *top, *div, &mut out),
            (Event::Print(m, top, div), true) => print_json(m, *top, *div, &mut out),
        }
    }
    out.push_str("\n\n");
    print_all_at_exit(&case.exit, &mut out, json);
    out
}

#[test]
fn maps_print_like_bpftrace() {
    if bpftrace_ref::skip_reason("maps_print_like_bpftrace").is_some() {
        return;
    }
    let mut failures = vec![];
    for case in cases() {
        for json in [false, true] {
            let args: &[&str] = if json { &["-f", "json"] } else { &[] };
            let got = bpftrace_ref::run_bpftrace(args, &case.script);
            let got = String::from_utf8_lossy(&got).into_owned();
            let want = expected(&case, json);
            if got != want {
                failures.push(format!(
                    "script ({}): {}\n--- bpftrace\n{got}--- rbt\n{want}",
                    if json { "json" } else { "text" },
                    case.script
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
