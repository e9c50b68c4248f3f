//! Folding one key's per-CPU slots into the value bpftrace 0.17 prints (utils.h
//! `reduce_value`, utils.cpp `min_value` / `max_value`). Each slice holds one 8-byte slot
//! per possible CPU, decoded as little-endian; CPUs that never ran the probe hold 0.

/// `count()`, `hist()` / `lhist()` bucket counts, `sum()` of unsigned values: the
/// wrapping sum of the slots.
pub fn merge_count(per_cpu: &[u64]) -> u64 {
    per_cpu.iter().fold(0, |a, &v| a.wrapping_add(v))
}

/// `sum()` of signed values, and each of avg/stats' two slots (bpftrace reduces both the
/// count and the total as `int64_t`): the wrapping sum.
pub fn merge_sum(per_cpu: &[i64]) -> i64 {
    per_cpu.iter().fold(0, |a, &v| a.wrapping_add(v))
}

/// `min()`: each CPU stores `0xffffffff - v` (only when that is >= the slot, compared
/// signed, a missing slot reading as 0). bpftrace takes the largest slot (compared signed,
/// starting from 0) and undoes the transform: 0 stays 0 (a `zero()`ed map prints 0),
/// anything else `m` becomes `0xffffffff - m`.
pub fn merge_min(per_cpu_stored: &[i64]) -> i64 {
    let m = per_cpu_stored.iter().fold(0i64, |a, &v| a.max(v));
    if m == 0 {
        0
    } else {
        0xffff_ffff_i64.wrapping_sub(m)
    }
}

/// `max()`: each CPU stores `v` itself (only when `v >= slot`, compared signed, a missing
/// slot reading as 0, so max() of only negative values never creates the entry).
/// bpftrace takes the largest slot compared unsigned, starting from 0, and prints it
/// unsigned.
pub fn merge_max(per_cpu: &[u64]) -> u64 {
    per_cpu.iter().fold(0, |a, &v| a.max(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one CPU's slot holds after `min(v)` calls, as bpftrace's codegen stores it.
    fn min_slot(values: &[i64]) -> i64 {
        let mut slot = 0i64;
        for &v in values {
            let inverted = 0xffff_ffff_i64.wrapping_sub(v);
            if inverted >= slot {
                slot = inverted;
            }
        }
        slot
    }

    #[test]
    fn min_round_trips_like_bpftrace() {
        // bpftrace printed @mn[1]: -3 for min(-3), @mn[2]: 5, @mn[3]: 0, @mb: 2147483647
        // for min(0x7fffffff), @mb2: -2147483648 for min(-0x80000000), @big2: 0 for
        // min(0xffffffff), and no @big entry at all for min(0x100000000).
        for v in [-3, 5, 0, 0x7fff_ffff, -0x8000_0000] {
            assert_eq!(merge_min(&[min_slot(&[v]), 0]), v);
        }
        assert_eq!(merge_min(&[min_slot(&[0xffff_ffff])]), 0);
        assert_eq!(min_slot(&[0x1_0000_0000]), 0, "never stored");
        // Two CPUs: the smaller value wins.
        assert_eq!(merge_min(&[min_slot(&[4, 9]), min_slot(&[-1])]), -1);
        assert_eq!(merge_min(&[0, 0]), 0, "zero()ed");
    }

    #[test]
    fn sums_and_max() {
        assert_eq!(merge_count(&[1, 2, 0, u64::MAX]), 2);
        assert_eq!(merge_sum(&[-7, 3, 0]), -4);
        assert_eq!(merge_max(&[0, 7, 3]), 7);
        assert_eq!(merge_max(&[]), 0);
    }
}
