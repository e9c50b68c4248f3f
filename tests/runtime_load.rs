//! Loading hand-built programs: maps, program load, verifier rejection, BEGIN-style
//! test runs. Needs root and a BPF-capable kernel (skips otherwise, fails under CI).

mod runtime_common;
mod support;

use runtime_common::*;
use std::os::fd::AsFd;

use rbt::abi::map_type;
use rbt::sys;

const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;

#[test]
fn map_create_update_lookup() {
    if skip_reason("map_create_update_lookup").is_some() {
        return;
    }
    let map = sys::map_create(map_type::ARRAY, 4, 8, 2, "rbt_test").expect("map_create");
    sys::map_update_elem(
        map.as_fd(),
        &1u32.to_ne_bytes(),
        &0xdead_beefu64.to_ne_bytes(),
        0,
    )
    .expect("update");
    let mut value = [0u8; 8];
    assert!(sys::map_lookup_elem(map.as_fd(), &1u32.to_ne_bytes(), &mut value).expect("lookup"));
    assert_eq!(u64::from_ne_bytes(value), 0xdead_beef);
    // Buffers smaller than what the kernel would access are refused before the call.
    let mut short = [0u8; 4];
    let err = sys::map_lookup_elem(map.as_fd(), &1u32.to_ne_bytes(), &mut short)
        .expect_err("short value");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = sys::map_update_elem(map.as_fd(), &[1u8], &value, 0).expect_err("short key");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let info = sys::map_info(map.as_fd()).expect("map_info");
    assert_eq!(
        (
            info.map_type,
            info.key_size,
            info.value_size,
            info.max_entries
        ),
        (map_type::ARRAY, 4, 8, 2)
    );
    // Out of range for an array map: absent, not an error.
    assert!(!sys::map_lookup_elem(map.as_fd(), &7u32.to_ne_bytes(), &mut value).expect("lookup"));
}

#[test]
fn mmapable_array_is_read_without_lookups() {
    if skip_reason("mmapable_array_is_read_without_lookups").is_some() {
        return;
    }
    let flags = rbt::abi::BPF_F_MMAPABLE;
    let map = sys::map_create_with_flags(map_type::ARRAY, 4, 8, 2, flags, "rbt_status")
        .expect("mmapable array");
    let update = |key: u32, value: u64| {
        sys::map_update_elem(map.as_fd(), &key.to_ne_bytes(), &value.to_ne_bytes(), 0)
            .expect("update")
    };
    update(1, 0x1234_5678_9abc);
    let memory = sys::ArrayMemory::map(map.as_fd()).expect("map the array");
    assert_eq!(memory.load_u64(0), Some(0));
    assert_eq!(memory.load_u64(1), Some(0x1234_5678_9abc));
    // The mapping is shared with the kernel: later updates show without a new mapping.
    update(0, 7);
    assert_eq!(memory.load_u64(0), Some(7));
    assert_eq!(memory.load_u64(2), None);
    // An array created without the flag is refused up front (the kernel would refuse
    // the mmap too), so callers fall back to lookups.
    let plain = sys::map_create(map_type::ARRAY, 4, 8, 2, "rbt_plain").expect("plain array");
    let err = sys::ArrayMemory::map(plain.as_fd()).expect_err("not mmapable");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn raw_tp_test_run_sees_current_task() {
    if skip_reason("raw_tp_test_run_sees_current_task").is_some() {
        return;
    }
    // return bpf_get_current_pid_tgid() >> 32  (the tgid of the process calling TEST_RUN)
    let insns = [call(HELPER_GET_CURRENT_PID_TGID), rsh_imm(R0, 32), exit()];
    let prog = sys::prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, &insns, "GPL", "rbt_pid", 0)
        .expect("prog_load");
    let ret = sys::prog_test_run(prog.as_fd()).expect("test_run");
    assert_eq!(ret, std::process::id());
}

#[test]
fn raw_tp_may_call_ringbuf_output() {
    if skip_reason("raw_tp_may_call_ringbuf_output").is_some() {
        return;
    }
    let ring = sys::map_create(map_type::RINGBUF, 0, 0, 4096, "rbt_ring").expect("ringbuf map");
    let mut insns = emit_record(3);
    // patch the map reference by hand (runtime::load does this for codegen output)
    insns[7].imm = std::os::fd::AsRawFd::as_raw_fd(&ring);
    let prog = sys::prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, &insns, "GPL", "rbt_emit", 0)
        .unwrap_or_else(|e| panic!("prog_load: {e}\n{}", e.verifier_log));
    // ringbuf_output returns 0 on success
    assert_eq!(sys::prog_test_run(prog.as_fd()).expect("test_run"), 0);
}

#[test]
fn verifier_rejection_returns_log() {
    if skip_reason("verifier_rejection_returns_log").is_some() {
        return;
    }
    // Reads r0 before writing it and falls off the end: the verifier must refuse.
    let insns = [ldx_dw(R0, R6, 0), exit()];
    let err = sys::prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, &insns, "GPL", "rbt_bad", 0)
        .expect_err("must be rejected");
    assert_eq!(
        err.errno.raw_os_error(),
        Some(libc::EACCES),
        "{err}: {}",
        err.verifier_log
    );
    assert!(
        err.verifier_log.contains("R6 !read_ok"),
        "log: {}",
        err.verifier_log
    );
}

#[test]
fn load_patches_maps_and_reports_verifier_log() {
    if skip_reason("load_patches_maps_and_reports_verifier_log").is_some() {
        return;
    }
    // A good program referencing map 0 loads.
    let good = compiled(vec![begin(emit_record(0))]);
    let loaded = load(&good);
    assert_eq!((loaded.maps.len(), loaded.programs.len()), (2, 1));

    // A reference to a map that does not exist is an internal error, not a kernel call.
    let mut bad_map = emit_record(0);
    bad_map[7].imm = 9;
    let c = compiled(vec![begin(bad_map)]);
    let err = rbt::runtime::load(&c)
        .expect_err("map 9 does not exist")
        .to_string();
    assert_eq!(
        err,
        "internal error: program BEGIN: instruction 7 refers to map 9, which does not exist"
    );

    // An uninitialized register: the verifier's reason ends the message.
    let c = compiled(vec![begin(vec![ldx_dw(R0, R6, 0), exit()])]);
    let err = rbt::runtime::load(&c)
        .expect_err("verifier must reject")
        .to_string();
    let first = err.lines().next().unwrap();
    assert_eq!(
        first,
        "the kernel's BPF verifier rejected the program for BEGIN: Permission denied (os error 13)"
    );
    assert!(err.lines().last().unwrap().contains("R6 !read_ok"), "{err}");
}

#[test]
fn load_takes_the_maps_made_while_the_script_compiled() {
    if skip_reason("load_takes_the_maps_made_while_the_script_compiled").is_some() {
        return;
    }
    let premade = rbt::runtime::Premade::create();
    let standard = rbt::codegen::standard_maps();
    assert_eq!(premade.remaining(), standard.len());
    let good = compiled(vec![begin(emit_record(0))]);
    let loaded = rbt::runtime::load_with(&good, &premade).expect("load");
    assert_eq!(premade.remaining(), 0, "every premade map is taken");
    for (spec, fd) in standard.iter().zip(&loaded.maps) {
        let info = sys::map_info(fd.as_fd()).expect("map info");
        assert_eq!(
            (info.map_type, info.max_entries),
            (spec.map_type, spec.max_entries),
            "{}",
            spec.name
        );
    }
    // The program runs against them: BEGIN's record arrives in the premade ring buffer.
    let mut ring = rbt::runtime::RingBuf::new(loaded.maps[0].as_fd()).expect("map ring");
    sys::prog_test_run(loaded.programs[0].as_fd()).expect("run BEGIN");
    let mut records = 0;
    ring.consume(|_| {
        records += 1;
        Ok::<_, std::io::Error>(rbt::runtime::Next::Continue)
    })
    .expect("consume");
    assert_eq!(records, 1);
}

/// Runs this test binary again as `nobody` (via setpriv) and checks that loading fails
/// with the message naming the missing privileges. The child run is this same test,
/// told by an environment variable to do the unprivileged part.
#[test]
fn unprivileged_load_names_capabilities() {
    const CHILD: &str = "RBT_TEST_UNPRIVILEGED_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let c = compiled(vec![begin(emit_record(0))]);
        let err = rbt::runtime::load(&c).expect_err("nobody may not load BPF");
        println!("ERROR: {err}");
        return;
    }
    if skip_reason("unprivileged_load_names_capabilities").is_some() {
        return;
    }
    let mut setpriv = std::process::Command::new("setpriv");
    setpriv
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "unprivileged_load_names_capabilities",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1");
    let Some(out) = support::output_or_skip("unprivileged_load_names_capabilities", &mut setpriv)
    else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "ERROR: cannot create BPF map events: permission denied (run as root, or grant CAP_BPF and CAP_PERFMON)"
        ),
        "{stdout}"
    );
}

/// A big hash map is read by several threads over ranges of buckets
/// (`sys::map_entries`): whatever the split, the same entries in the same order as one
/// thread's read, each once, including when a range's last batch runs on into the next
/// range (30,000 keys: batches of 8192) or one batch holds the whole map (100 keys).
#[test]
fn map_read_split_over_threads_equals_one_read() {
    if skip_reason("map_read_split_over_threads_equals_one_read").is_some() {
        return;
    }
    let cpus = sys::possible_cpus();
    for keys in [100u64, 30_000] {
        let map = sys::map_create(map_type::PERCPU_HASH, 8, 8, 65_536, "rbt_split").expect("map");
        for k in 0..keys {
            let value: Vec<u8> = (0..cpus as u64)
                .flat_map(|cpu| (k * 10 + cpu).to_ne_bytes())
                .collect();
            sys::map_update_elem(map.as_fd(), &k.to_ne_bytes(), &value, 0).expect("update");
        }
        let one = sys::map_entries_split(map.as_fd(), 1).expect("one thread");
        assert_eq!(one.len() as u64, keys);
        let mut seen = vec![false; keys as usize];
        for e in one.iter() {
            let k = u64::from_ne_bytes(e.key.try_into().expect("8-byte key"));
            assert!(
                !std::mem::replace(&mut seen[k as usize], true),
                "key {k} twice"
            );
            let first = u64::from_ne_bytes(e.value[..8].try_into().expect("value"));
            assert_eq!(first, k * 10, "key {k}'s CPU 0 value");
        }
        for ways in [2, 3, 4] {
            let split = sys::map_entries_split(map.as_fd(), ways).expect("split read");
            assert!(split == one, "{keys} keys read by {ways} threads differ");
        }
        assert!(sys::map_entries(map.as_fd()).expect("map_entries") == one);
    }
}
