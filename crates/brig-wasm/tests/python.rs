//! Python on WASI: output, input, errors and their verdicts, files, and what the build lacks.

mod common;

use brig_core::Status;
use common::{python, python_installed, tier};

#[test]
fn print_and_exit_codes() {
    if !python_installed() {
        return;
    }
    let r = tier().run(&python(
        "import sys\nprint('hello', sys.version_info[:2])\n",
    ));
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.stdout, "hello (3, 12)\n");
    assert!(r.memory_peak_bytes > 0);

    let r = tier().run(&python("import sys\nprint('bye')\nsys.exit(3)\n"));
    assert_eq!(
        (r.status, r.exit_code),
        (Status::RuntimeError, Some(3)),
        "{r:?}"
    );
}

#[test]
fn stdin_args_and_env() {
    if !python_installed() {
        return;
    }
    let mut job = python(
        "import sys, os\nprint(sys.stdin.read().upper(), end='')\nprint(sys.argv)\n\
         print(os.environ.get('GREETING'), os.environ.get('HOME'), os.environ.get('PATH'))\n",
    );
    job.stdin = b"line one\nline two\n".to_vec();
    job.args = vec!["a".into(), "b c".into()];
    job.env = vec![("GREETING".into(), "hi".into())];
    let r = tier().run(&job);
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(
        r.stdout, "LINE ONE\nLINE TWO\n['/work/main.py', 'a', 'b c']\nhi None None\n",
        "the host's environment is not inherited"
    );
}

#[test]
fn an_uncaught_exception_is_a_runtime_error_with_its_traceback() {
    if !python_installed() {
        return;
    }
    let r = tier().run(&python("def f():\n    raise ValueError('boom')\n\nf()\n"));
    assert_eq!(
        (r.status, r.exit_code),
        (Status::RuntimeError, Some(1)),
        "{r:?}"
    );
    assert!(
        r.stderr.starts_with("Traceback (most recent call last):\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("File \"/work/main.py\", line 2, in f"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.ends_with("ValueError: boom\n"), "{}", r.stderr);
}

#[test]
fn a_syntax_error_is_a_compile_error() {
    if !python_installed() {
        return;
    }
    for source in [
        "print('ok')\ndef broken(:\n    pass\n",
        "if True:\nprint('no indent')\n",
    ] {
        let r = tier().run(&python(source));
        assert_eq!(r.status, Status::CompileError, "{source}: {r:?}");
        assert_eq!(r.stdout, "", "nothing ran");
        assert!(r.stderr.contains("/work/main.py"), "{}", r.stderr);
    }
    // A syntax error raised while running (exec, a bad import) is the program's runtime error.
    let r = tier().run(&python("exec('def (')\n"));
    assert_eq!(r.status, Status::RuntimeError, "{r:?}");
}

#[test]
fn files_are_read_and_written_in_the_work_dir() {
    if !python_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut job = python(
        "import os\n\
         print(open('data/input.txt').read().strip(), open('/work/data/input.txt').read().strip())\n\
         with open('out.txt', 'w') as f:\n    f.write('written by python')\n\
         print(open('/work/out.txt').read())\n\
         print(os.getcwd(), sorted(os.listdir('.')))\n",
    );
    job.files = vec![("data/input.txt".into(), b"given\n".to_vec())];
    job.work_dir = Some(dir.path().to_path_buf());
    let r = tier().run(&job);
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(
        r.stdout,
        "given given\nwritten by python\n/ ['data', 'main.py', 'out.txt']\n"
    );
    let written = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    assert_eq!(
        written, "written by python",
        "the file stays in the caller's work dir"
    );
}

#[test]
fn nothing_outside_the_work_dir_is_visible() {
    if !python_installed() {
        return;
    }
    let r = tier().run(&python(
        "import os\n\
         for p in ['/etc/passwd', '../etc/passwd', '/proc/self/environ', '/work/../etc/passwd']:\n\
         \x20   try:\n\
         \x20       open(p).read()\n\
         \x20       print('READ', p)\n\
         \x20   except OSError as e:\n\
         \x20       print(type(e).__name__, p)\n\
         open('/etc/passwd')\n",
    ));
    assert_eq!(r.status, Status::RuntimeError, "{r:?}");
    assert!(!r.stdout.contains("READ"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("No such file or directory: '/etc/passwd'"),
        "{}",
        r.stderr
    );
}

#[test]
fn there_is_no_network() {
    if !python_installed() {
        return;
    }
    let r = tier().run(&python(
        "import socket\n\
         for attempt in [lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),\n\
         \x20               lambda: socket.create_connection(('127.0.0.1', 7070), timeout=1)]:\n\
         \x20   try:\n\
         \x20       attempt()\n\
         \x20       print('CONNECTED')\n\
         \x20   except Exception as e:\n\
         \x20       print('refused:', type(e).__name__)\n",
    ));
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(!r.stdout.contains("CONNECTED"), "{}", r.stdout);
}

#[test]
fn missing_c_extensions_fail_with_a_clear_message() {
    if !python_installed() {
        return;
    }
    for module in ["ssl", "_ctypes", "lzma"] {
        let r = tier().run(&python(&format!("import {module}\n")));
        assert_eq!(r.status, Status::RuntimeError, "{module}: {r:?}");
        assert!(
            r.stderr.contains("ModuleNotFoundError: No module named"),
            "{}",
            r.stderr
        );
    }
    // What the build does have.
    let r = tier().run(&python(
        "import json, re, sqlite3, zlib, decimal, datetime, collections\n\
         print(json.dumps({'ok': sqlite3.connect(':memory:').execute('select 1').fetchone()[0]}))\n",
    ));
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (Status::Ok, "{\"ok\": 1}\n"),
        "{r:?}"
    );
}

#[test]
fn the_same_tier_runs_python_concurrently() {
    if !python_installed() {
        return;
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| s.spawn(move || tier().run(&python(&format!("print({i} * 2)\n")))))
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let r = h.join().unwrap();
            assert_eq!((r.status, r.stdout), (Status::Ok, format!("{}\n", i * 2)));
        }
    });
}
