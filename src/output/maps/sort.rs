//! libstdc++'s `std::sort`, step for step, because bpftrace 0.17 sorts map entries with it
//! and it is not stable: with more than 16 entries, equal values come out in an order
//! that only this exact algorithm reproduces (introsort: median-of-three quicksort down
//! to runs of 16, heapsort past 2*log2(n) levels, then one insertion sort).
//! Entries are sorted as indices; `less` compares two entries by index.

const THRESHOLD: usize = 16;

/// Sorts `v` like libstdc++ `std::sort(v.begin(), v.end(), less)`.
pub(crate) fn cxx_sort(v: &mut [usize], less: &impl Fn(usize, usize) -> bool) {
    if v.len() > 1 {
        let depth = 2 * (usize::BITS - 1 - v.len().leading_zeros()) as usize;
        introsort_loop(v, depth, less);
        final_insertion_sort(v, less);
    }
}

fn introsort_loop(mut v: &mut [usize], mut depth: usize, less: &impl Fn(usize, usize) -> bool) {
    while v.len() > THRESHOLD {
        if depth == 0 {
            heap_sort(v, less);
            return;
        }
        depth -= 1;
        let cut = partition_pivot(v, less);
        let (left, right) = v.split_at_mut(cut);
        introsort_loop(right, depth, less);
        v = left;
    }
}

fn partition_pivot(v: &mut [usize], less: &impl Fn(usize, usize) -> bool) -> usize {
    let (mid, last) = (v.len() / 2, v.len() - 1);
    move_median_to_first(v, 1, mid, last, less);
    let pivot = v[0];
    let (mut first, mut last) = (1, v.len());
    loop {
        while less(v[first], pivot) {
            first += 1;
        }
        last -= 1;
        while less(pivot, v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

fn move_median_to_first(
    v: &mut [usize],
    a: usize,
    b: usize,
    c: usize,
    less: &impl Fn(usize, usize) -> bool,
) {
    let l = |x: usize, y: usize| less(v[x], v[y]);
    let pick = if l(a, b) {
        if l(b, c) {
            b
        } else if l(a, c) {
            c
        } else {
            a
        }
    } else if l(a, c) {
        a
    } else if l(b, c) {
        c
    } else {
        b
    };
    v.swap(0, pick);
}

fn final_insertion_sort(v: &mut [usize], less: &impl Fn(usize, usize) -> bool) {
    if v.len() > THRESHOLD {
        insertion_sort(&mut v[..THRESHOLD], less);
        for i in THRESHOLD..v.len() {
            unguarded_linear_insert(v, i, less);
        }
    } else {
        insertion_sort(v, less);
    }
}

fn insertion_sort(v: &mut [usize], less: &impl Fn(usize, usize) -> bool) {
    for i in 1..v.len() {
        if less(v[i], v[0]) {
            v[..=i].rotate_right(1);
        } else {
            unguarded_linear_insert(v, i, less);
        }
    }
}

fn unguarded_linear_insert(v: &mut [usize], mut last: usize, less: &impl Fn(usize, usize) -> bool) {
    let val = v[last];
    while less(val, v[last - 1]) {
        v[last] = v[last - 1];
        last -= 1;
    }
    v[last] = val;
}

/// `std::__partial_sort(first, last, last)`: make_heap, then sort_heap.
fn heap_sort(v: &mut [usize], less: &impl Fn(usize, usize) -> bool) {
    let len = v.len();
    if len >= 2 {
        let mut parent = (len - 2) / 2;
        loop {
            let value = v[parent];
            adjust_heap(v, parent, len, value, less);
            if parent == 0 {
                break;
            }
            parent -= 1;
        }
    }
    let mut last = len;
    while last > 1 {
        last -= 1;
        let value = v[last];
        v[last] = v[0];
        adjust_heap(v, 0, last, value, less);
    }
}

fn adjust_heap(
    v: &mut [usize],
    mut hole: usize,
    len: usize,
    value: usize,
    less: &impl Fn(usize, usize) -> bool,
) {
    let top = hole;
    let mut child = hole;
    while child < (len.wrapping_sub(1)) / 2 {
        child = 2 * (child + 1);
        if less(v[child], v[child - 1]) {
            child -= 1;
        }
        v[hole] = v[child];
        hole = child;
    }
    if len & 1 == 0 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        v[hole] = v[child - 1];
        hole = child - 1;
    }
    // __push_heap
    let mut parent = hole.wrapping_sub(1) / 2;
    while hole > top && less(v[parent], value) {
        v[hole] = v[parent];
        hole = parent;
        parent = hole.wrapping_sub(1) / 2;
    }
    v[hole] = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(values: &[i32]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..values.len()).collect();
        cxx_sort(&mut idx, &|a, b| values[a] < values[b]);
        idx
    }

    #[test]
    fn sorts() {
        let values: Vec<i32> = (0..200).map(|i| (i * 7919 % 101) - 50).collect();
        let got: Vec<i32> = sorted(&values).iter().map(|&i| values[i]).collect();
        let mut want = values.clone();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn equal_values_in_libstdcxx_order() {
        // Up to 16 entries std::sort is an insertion sort: equal values keep their order.
        assert_eq!(sorted(&[1; 16]), (0..16).collect::<Vec<_>>());
        // bpftrace -e 'BEGIN { $i = 0; while ($i < 20) { @v[$i] = avg(6); $i++; } exit(); }'
        // printed @v[10], @v[19], @v[18], ..., @v[11], @v[0], @v[9], ..., @v[1] (std::sort
        // of 20 equal averages that came in key order).
        let want = [
            10, 19, 18, 17, 16, 15, 14, 13, 12, 11, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1,
        ];
        assert_eq!(sorted(&[6; 20]), want);
    }

    #[test]
    fn heap_sort_sorts() {
        let values: Vec<i32> = (0..50).map(|i| (i * 37 % 23) - 9).collect();
        let mut idx: Vec<usize> = (0..values.len()).collect();
        heap_sort(&mut idx, &|a, b| values[a] < values[b]);
        let got: Vec<i32> = idx.iter().map(|&i| values[i]).collect();
        let mut want = values.clone();
        want.sort();
        assert_eq!(got, want);
    }
}
