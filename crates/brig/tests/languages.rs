//! Every shipped language that is available here: hello world, stdin echo, args, a compile
//! error and a runtime error, through `brig run`.

mod common;
use common::*;

struct Case {
    id: &'static str,
    ext: &'static str,
    hello: &'static str,
    echo: &'static str,
    args: &'static str,
    broken: &'static str,
    fails: &'static str,
}

const CASES: &[Case] = &[
    Case {
        id: "python",
        ext: "py",
        hello: "print('hello')",
        echo: "print(input().upper())",
        args: "import sys\nprint(' '.join(sys.argv[1:]))",
        broken: "def f(:\n",
        fails: "raise ValueError('boom')",
    },
    Case {
        id: "bash",
        ext: "sh",
        hello: "echo hello",
        echo: "read x; echo ${x^^}",
        args: "echo \"$@\"",
        broken: "if then fi (",
        fails: "echo boom >&2; exit 3",
    },
    Case {
        id: "javascript",
        ext: "js",
        hello: "console.log('hello')",
        echo: "const x = require('fs').readFileSync(0, 'utf8').trim(); console.log(x.toUpperCase())",
        args: "console.log(process.argv.slice(2).join(' '))",
        broken: "function (",
        fails: "throw new Error('boom')",
    },
    Case {
        id: "c",
        ext: "c",
        hello: "#include <stdio.h>\nint main(){puts(\"hello\");return 0;}",
        echo: "#include <stdio.h>\n#include <ctype.h>\nint main(){char b[64];if(!fgets(b,64,stdin))return 1;for(char*p=b;*p;p++)*p=toupper(*p);fputs(b,stdout);return 0;}",
        args: "#include <stdio.h>\nint main(int c,char**v){for(int i=1;i<c;i++)printf(i>1?\" %s\":\"%s\",v[i]);puts(\"\");return 0;}",
        broken: "int main( { return 0; }",
        fails: "#include <stdio.h>\nint main(){fputs(\"boom\\n\",stderr);return 3;}",
    },
    Case {
        id: "cpp",
        ext: "cpp",
        hello: "#include <iostream>\nint main(){std::cout<<\"hello\\n\";}",
        echo: "#include <iostream>\n#include <string>\n#include <cctype>\nint main(){std::string s;std::getline(std::cin,s);for(auto&c:s)c=std::toupper(c);std::cout<<s<<\"\\n\";}",
        args: "#include <iostream>\nint main(int c,char**v){for(int i=1;i<c;i++)std::cout<<(i>1?\" \":\"\")<<v[i];std::cout<<\"\\n\";}",
        broken: "int main() { return }",
        fails: "#include <stdexcept>\nint main(){throw std::runtime_error(\"boom\");}",
    },
    Case {
        id: "java",
        ext: "java",
        hello: "public class Main { public static void main(String[] a) { System.out.println(\"hello\"); } }",
        echo: "public class Main { public static void main(String[] a) throws Exception { var r = new java.io.BufferedReader(new java.io.InputStreamReader(System.in)); System.out.println(r.readLine().toUpperCase()); } }",
        args: "public class Main { public static void main(String[] a) { System.out.println(String.join(\" \", a)); } }",
        broken: "public class Main { void f( }",
        fails: "public class Main { public static void main(String[] a) { throw new RuntimeException(\"boom\"); } }",
    },
    Case {
        id: "rust",
        ext: "rs",
        hello: "fn main() { println!(\"hello\"); }",
        echo: "fn main() { let mut s = String::new(); std::io::stdin().read_line(&mut s).unwrap(); println!(\"{}\", s.trim().to_uppercase()); }",
        args: "fn main() { let a: Vec<String> = std::env::args().skip(1).collect(); println!(\"{}\", a.join(\" \")); }",
        broken: "fn main() { let x: i32 = \"no\"; }",
        fails: "fn main() { panic!(\"boom\"); }",
    },
    Case {
        id: "perl",
        ext: "pl",
        hello: "print \"hello\\n\";",
        echo: "my $x = <STDIN>; print uc($x);",
        args: "print join(' ', @ARGV), \"\\n\";",
        broken: "print (;",
        fails: "die \"boom\\n\";",
    },
];

fn available(id: &str) -> bool {
    let out = brig().args(["languages", "--json"]).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not listed"));
    entry["available"].as_bool() == Some(true)
}

fn check_language(case: &Case) {
    if no_sandbox() {
        return;
    }
    if !available(case.id) {
        skip(&format!("{} toolchain not installed", case.id));
        return;
    }
    let flags = ["--timeout", "60s", "--cpu-time", "60s"];
    let hello = program(case.ext, case.hello);
    let r = run_json(&hello.path, &flags, &[], b"");
    assert_status(&r, "ok");
    assert_eq!(stdout(&r), "hello\n", "{}", case.id);
    if r["compile"].is_object() {
        assert_eq!(r["compile"]["status"], "ok");
    }

    let echo = program(case.ext, case.echo);
    let r = run_json(&echo.path, &flags, &[], b"shout\n");
    assert_status(&r, "ok");
    assert_eq!(stdout(&r), "SHOUT\n", "{}", case.id);

    let args = program(case.ext, case.args);
    let r = run_json(&args.path, &flags, &["one", "two words"], b"");
    assert_status(&r, "ok");
    assert_eq!(stdout(&r), "one two words\n", "{}", case.id);

    let broken = program(case.ext, case.broken);
    let r = run_json(&broken.path, &flags, &[], b"");
    if case.id == "bash" || case.id == "perl" {
        // Shells and Perl report parse errors as a non-zero exit at run time.
        assert!(
            ["runtime_error", "compile_error"].contains(&status(&r)),
            "{}: {r}",
            case.id
        );
    } else {
        assert_status(&r, "compile_error");
        let diagnostics = match r["compile"].as_object() {
            Some(compile) => {
                compile["stderr"].as_str().unwrap_or("").to_string()
                    + compile["stdout"].as_str().unwrap_or("")
            }
            None => r["stderr"].as_str().unwrap_or("").to_string(),
        };
        assert!(!diagnostics.is_empty(), "{}: no compiler output", case.id);
    }

    let fails = program(case.ext, case.fails);
    let r = run_json(&fails.path, &flags, &[], b"");
    if case.id == "cpp" {
        // An uncaught exception calls abort(): SIGABRT, a proper signal (the program is not
        // PID 1, where it would be ignored).
        assert_status(&r, "killed");
        assert_eq!(r["signal"], 6);
    } else {
        assert_status(&r, "runtime_error");
        assert!(
            r["stderr"].as_str().unwrap().contains("boom"),
            "{}: {r}",
            case.id
        );
    }
}

macro_rules! language_test {
    ($name:ident, $id:literal) => {
        #[test]
        fn $name() {
            check_language(CASES.iter().find(|c| c.id == $id).unwrap());
        }
    };
}

language_test!(python, "python");
language_test!(bash, "bash");
language_test!(javascript, "javascript");
language_test!(c, "c");
language_test!(cpp, "cpp");
language_test!(java, "java");
language_test!(rust, "rust");
language_test!(perl, "perl");

#[test]
fn python_scientific_stack_is_importable_when_installed() {
    if no_sandbox() {
        return;
    }
    let probe = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import numpy, pandas, matplotlib"])
        .status();
    if !probe.map(|s| s.success()).unwrap_or(false) {
        skip("python3-numpy/pandas/matplotlib not installed");
        return;
    }
    let p = program(
        "py",
        "import numpy as np, pandas as pd, matplotlib.pyplot as plt\nplt.plot([1,2]); plt.savefig('/work/f.png')\nprint(int(np.arange(5).sum()), len(pd.DataFrame({'a':[1,2]})))",
    );
    let r = run_json(
        &p.path,
        &["--timeout", "60s", "--cpu-time", "60s"],
        &[],
        b"",
    );
    assert_status(&r, "ok");
    assert_eq!(stdout(&r), "10 2\n");
}
