//! Bucket math of `hist()` and `lhist()`, as bpftrace 0.17's BPF code computes the index
//! (codegen_llvm.cpp `createLog2Function`, `createLinearFunction`), and the bucket labels
//! its printer writes (output.cpp `hist_index_label`, `lhist_index_label`).

/// `hist()`'s bucket: 0 for negative values, 1 for 0, otherwise 2 + floor(log2(value)) —
/// but bpftrace's binary search only tries shifts of 16, 8, 4, 2 and 1 (31 in all), so
/// every value from 2^31 up lands in bucket 33, printed `[2G, 4G)`: hist(1<<40) and
/// hist(i64::MAX) both print `[2G, 4G)`. The kernel side must compute exactly this.
pub fn log2_bucket(value: i64) -> usize {
    if value < 0 {
        return 0;
    }
    if value == 0 {
        return 1;
    }
    let mut n = value as u64;
    let mut result = 2;
    for i in (0..=4).rev() {
        let shift = u32::from(n >= 1 << (1 << i)) << i;
        n >>= shift;
        result += shift as usize;
    }
    result
}

/// The highest index [`log2_bucket`] returns (bpftrace's printer keeps 65 slots).
pub const LOG2_MAX_BUCKET: usize = 33;

/// `lhist(value, min, max, step)`'s bucket: 0 below `min` (signed compare), else
/// 1 + (min(value, max) - min) / step with an unsigned division. So `max` itself, and with
/// a step that does not divide `max - min` also the top partial bucket's values, share the
/// overflow bucket `1 + (max - min) / step`, printed `[max, ...)` (measured: lhist(9, 0, 10,
/// 3) prints `[10, ...)`). bpftrace 0.17 requires min >= 0, step >= 1, max > min and at
/// most 1000 buckets, so the index is at most 1001.
pub fn linear_bucket(value: i64, min: i64, max: i64, step: i64) -> usize {
    if value < min {
        return 0;
    }
    let top = if value > max { max } else { value };
    let step = (step as u64).max(1);
    (1 + (top.wrapping_sub(min) as u64) / step) as usize
}

/// hist's power-of-two label: `1`, `512`, `1K`, `2M`, `4G`, `8T` (bpftrace shifts an int).
pub(crate) fn hist_index_label(power: i32) -> String {
    let (power, suffix) = match power {
        40.. => (power - 40, "T"),
        30.. => (power - 30, "G"),
        20.. => (power - 20, "M"),
        10.. => (power - 10, "K"),
        _ => (power, ""),
    };
    format!("{}{suffix}", 1i32.wrapping_shl(power as u32))
}

/// lhist's label: whole mebibytes as `NM`, whole kibibytes as `NK`, else the number.
pub(crate) fn lhist_index_label(number: i32) -> String {
    const KILO: i32 = 1024;
    const MEGA: i32 = 1048576;
    if number == 0 {
        "0".to_string()
    } else if number % MEGA == 0 {
        format!("{}M", number / MEGA)
    } else if number % KILO == 0 {
        format!("{}K", number / KILO)
    } else {
        number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text label of hist bucket `i`, as output.cpp `hist_to_str` writes it.
    fn label(i: usize) -> String {
        match i {
            0 => "(..., 0)".into(),
            1 => "[0]".into(),
            2 => "[1]".into(),
            _ => format!(
                "[{}, {})",
                hist_index_label(i as i32 - 2),
                hist_index_label(i as i32 - 1)
            ),
        }
    }

    #[test]
    fn log2_matches_bpftrace() {
        // bpftrace -e 'BEGIN { @h = hist(-5); @h = hist(0); @h = hist(1); @h = hist(2);
        //   @h=hist(3); @h=hist(4); @h=hist(7); @h=hist(8); @h=hist(1024); @h=hist(1048576);
        //   exit(); }' printed (..., 0) 1, [0] 1, [1] 1, [2, 4) 2, [4, 8) 2, [8, 16) 1,
        //   [1K, 2K) 1, [1M, 2M) 1.
        let cases: [(i64, &str); 10] = [
            (-5, "(..., 0)"),
            (0, "[0]"),
            (1, "[1]"),
            (2, "[2, 4)"),
            (3, "[2, 4)"),
            (4, "[4, 8)"),
            (7, "[4, 8)"),
            (8, "[8, 16)"),
            (1024, "[1K, 2K)"),
            (1048576, "[1M, 2M)"),
        ];
        for (v, want) in cases {
            assert_eq!(label(log2_bucket(v)), want, "hist({v})");
        }
        // bpftrace -e 'BEGIN { @h = hist(0x7fffffffffffffff); @h = hist(1<<40);
        //   @h=hist(0x80000000); @h=hist(0x7fffffff); exit(); }' printed
        //   [1G, 2G) 1 and [2G, 4G) 3; hist(0x40000000) alone printed [1G, 2G).
        assert_eq!(label(log2_bucket(0x7fff_ffff)), "[1G, 2G)");
        assert_eq!(label(log2_bucket(0x4000_0000)), "[1G, 2G)");
        for v in [0x8000_0000, 1 << 40, i64::MAX] {
            assert_eq!(log2_bucket(v), LOG2_MAX_BUCKET, "hist({v})");
            assert_eq!(label(log2_bucket(v)), "[2G, 4G)");
        }
        assert_eq!(log2_bucket(i64::MIN), 0);
    }

    /// Text label of lhist bucket `i` (output.cpp `lhist_to_str`).
    fn llabel(i: usize, min: i32, max: i32, step: i32) -> String {
        let buckets = ((max - min) / step) as usize;
        let i32_ = i as i32;
        if i == 0 {
            format!("(..., {})", lhist_index_label(min))
        } else if i == buckets + 1 {
            format!("[{}, ...)", lhist_index_label(max))
        } else {
            format!(
                "[{}, {})",
                lhist_index_label((i32_ - 1) * step + min),
                lhist_index_label(i32_ * step + min)
            )
        }
    }

    #[test]
    fn linear_matches_bpftrace() {
        // bpftrace -e 'BEGIN { @l = lhist(-3, 0, 100, 10); @l = lhist(0, 0, 100, 10);
        //   @l = lhist(99, 0, 100, 10); @l = lhist(100, 0, 100, 10);
        //   @l = lhist(150, 0, 100, 10); exit(); }' printed (..., 0) 1, [0, 10) 1,
        //   [90, 100) 1, [100, ...) 2.
        let l = |v| llabel(linear_bucket(v, 0, 100, 10), 0, 100, 10);
        assert_eq!(l(-3), "(..., 0)");
        assert_eq!(l(i64::MIN), "(..., 0)");
        assert_eq!(l(0), "[0, 10)");
        assert_eq!(l(99), "[90, 100)");
        assert_eq!(l(100), "[100, ...)");
        assert_eq!(l(150), "[100, ...)");
        assert_eq!(l(i64::MAX), "[100, ...)");
        assert_eq!(linear_bucket(100, 0, 100, 10), 11);
        // bpftrace -e 'BEGIN { @l = lhist(9, 0, 10, 3); @l = lhist(10, 0, 10, 3);
        //   @l=lhist(1,0,10,3); @n = lhist(-7, 10, 30, 5); @n = lhist(10, 10, 30, 5);
        //   @n=lhist(29,10,30,5); @k = lhist(2048, 0, 4096, 1024);
        //   @m = lhist(5000000, 0, 2097152, 1048576); @m=lhist(1048576,0,2097152,1048576);
        //   exit(); }' printed @l: [0, 3) 1, [3, 6) 0, [6, 9) 0, [10, ...) 2 (9 is in the
        //   overflow bucket); @n: (..., 10) 1, [10, 15) 1, [25, 30) 1; @k: [2K, 3K) 1;
        //   @m: [1M, 2M) 1, [2M, ...) 1.
        assert_eq!(llabel(linear_bucket(1, 0, 10, 3), 0, 10, 3), "[0, 3)");
        assert_eq!(llabel(linear_bucket(9, 0, 10, 3), 0, 10, 3), "[10, ...)");
        assert_eq!(llabel(linear_bucket(10, 0, 10, 3), 0, 10, 3), "[10, ...)");
        let n = |v| llabel(linear_bucket(v, 10, 30, 5), 10, 30, 5);
        assert_eq!(n(-7), "(..., 10)");
        assert_eq!(n(9), "(..., 10)");
        assert_eq!(n(10), "[10, 15)");
        assert_eq!(n(29), "[25, 30)");
        assert_eq!(n(30), "[30, ...)");
        let k = llabel(linear_bucket(2048, 0, 4096, 1024), 0, 4096, 1024);
        assert_eq!(k, "[2K, 3K)");
        let m = |v| llabel(linear_bucket(v, 0, 2097152, 1048576), 0, 2097152, 1048576);
        assert_eq!(m(1048576), "[1M, 2M)");
        assert_eq!(m(5000000), "[2M, ...)");
    }
}
