//! ARCHITECTURE.md's invariants, checked against the source tree: each rule
//! reads the production sources (test modules and test files excluded) and
//! fails with every offending file and line, so a change that breaks one is
//! caught here rather than in review.

use std::path::{Path, PathBuf};

/// The longest a production source file may grow (tests excluded).
const MAX_LINES: usize = 800;
/// The longest a function's `main.rs` may be: read config, build, run.
const MAX_MAIN_LINES: usize = 40;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(name.as_str(), "tests" | "target" | "benches" | ".venv") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(path);
        }
    }
}

/// A production source file: its path from the root and its lines up to
/// its test module.
struct Source {
    path: String,
    lines: Vec<String>,
}

impl Source {
    fn under(&self, prefix: &str) -> bool {
        self.path.starts_with(prefix)
    }

    /// (line number, line) of lines containing `needle`, comments excluded.
    fn find(&self, needle: &str) -> Vec<(usize, &str)> {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                let code = l.split("//").next().unwrap_or("");
                code.contains(needle)
            })
            .map(|(i, l)| (i + 1, l.as_str()))
            .collect()
    }
}

/// The lines of `text` outside items marked `#[cfg(test)]` at the top
/// level (the item runs until its braces balance, or its `;`). Line numbers
/// of what is kept stay those of the file: removed lines become empty.
fn without_test_items(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut skipping = false;
    let mut depth: i64 = 0;
    let mut opened = false;
    for line in text.lines() {
        if !skipping && line == "#[cfg(test)]" {
            skipping = true;
            depth = 0;
            opened = false;
            out.push(String::new());
            continue;
        }
        if skipping {
            for c in line.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
                skipping = false;
            }
            out.push(String::new());
            continue;
        }
        out.push(line.to_string());
    }
    // Trailing blank lines (a file ending in its test module) do not count.
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out
}

fn production_sources() -> Vec<Source> {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root.join("shared/src"), &mut files);
    for parent in ["functions", "infra"] {
        for entry in std::fs::read_dir(root.join(parent)).unwrap().flatten() {
            rust_files(&entry.path().join("src"), &mut files);
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let lines = without_test_items(&text);
            Source {
                path: f
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
                lines,
            }
        })
        .collect()
}

/// Fails with every violation of `rule`, one per line.
fn check(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "architecture rule broken: {rule}\n  {}",
        violations.join("\n  ")
    );
}

fn offenders<'a>(sources: impl Iterator<Item = &'a Source>, needles: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for s in sources {
        for needle in needles {
            for (n, line) in s.find(needle) {
                out.push(format!("{}:{n}: {}", s.path, line.trim()));
            }
        }
    }
    out
}

#[test]
fn test_items_are_cut_out_wherever_they_sit() {
    let text = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn t() { x() }\n}\nfn b() {}\n#[cfg(test)]\nuse foo;\nfn c() {}\n";
    let kept: Vec<String> = without_test_items(text)
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(kept, ["fn a() {}", "fn b() {}", "fn c() {}"]);
}

#[test]
fn the_core_knows_no_lambda_crate() {
    let manifest = std::fs::read_to_string(root().join("shared/Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dev-dependencies]")
        .next()
        .unwrap_or_default();
    let lambda = ["lambda_runtime", "lambda_http", "aws_lambda_events"];
    let mut violations: Vec<String> = lambda
        .iter()
        .filter(|c| deps.lines().any(|l| l.trim_start().starts_with(*c)))
        .map(|c| format!("shared/Cargo.toml depends on {c}"))
        .collect();
    let sources = production_sources();
    violations.extend(offenders(
        sources.iter().filter(|s| s.under("shared/")),
        &lambda,
    ));
    check(
        "`shared` never depends on a Lambda runtime or event crate",
        violations,
    );
}

#[test]
fn only_the_config_module_reads_the_environment() {
    let sources = production_sources();
    check(
        "the process environment is read only in shared/src/config.rs",
        offenders(
            sources.iter().filter(|s| s.path != "shared/src/config.rs"),
            &["env::var(", "env::var_os(", "env::vars("],
        ),
    );
}

/// Where an AWS SDK type may appear: the core's adapters, each function's
/// wiring (the one constructor that builds its clients), and the local stack,
/// which plays AWS.
const SDK_ALLOWED: [&str; 14] = [
    "shared/src/dynamo/",
    // The discovery and execution adapters (shared's `discovery` feature).
    "shared/src/discovery/aws/",
    "shared/src/execution/aws/",
    "shared/src/queue/sqs.rs",
    "shared/src/collector/cloudwatch.rs",
    "shared/src/costs/explorer.rs",
    "shared/src/channels/websocket.rs",
    // The classification of SDK errors into retryable and not.
    "shared/src/error.rs",
    // The call-counting interceptor benchmarks attach.
    "shared/src/calls.rs",
    "functions/api/src/app.rs",
    "functions/processor/src/lib.rs",
    "functions/scheduler/src/lib.rs",
    "functions/ws-",
    "infra/",
];

#[test]
fn aws_sdk_types_stay_in_adapters_and_wiring() {
    let sources = production_sources();
    check(
        "aws_sdk_* is used only in adapter modules and each function's wiring",
        offenders(
            sources
                .iter()
                .filter(|s| !SDK_ALLOWED.iter().any(|a| s.under(a))),
            &["aws_sdk_", "aws_smithy_"],
        ),
    );
}

/// The SDKs of discovery (shared's `discovery` feature): large crates that
/// only the processor, which discovers, may link. (STS is not among them:
/// aws-config links it into every function for its credential providers.)
const DISCOVERY_SDKS: [&str; 8] = [
    "aws-sdk-ec2",
    "aws-sdk-rds",
    "aws-sdk-elasticache",
    "aws-sdk-lambda",
    "aws-sdk-ecs",
    "aws-sdk-s3",
    "aws-sdk-applicationautoscaling",
    "aws-sdk-organizations",
];

#[test]
fn only_the_processor_links_the_discovery_sdks() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut violations = Vec::new();
    for function in [
        "api",
        "ws-connect",
        "ws-disconnect",
        "ws-message",
        "scheduler",
    ] {
        for sdk in DISCOVERY_SDKS {
            // `cargo tree -i` names every path from the function to the
            // crate, and fails when the function's graph has none.
            let out = std::process::Command::new(&cargo)
                .args([
                    "tree",
                    "--offline",
                    "-e",
                    "normal",
                    "-p",
                    function,
                    "-i",
                    sdk,
                ])
                .current_dir(root())
                .output()
                .expect("cargo tree runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && stdout.contains(sdk) {
                violations.push(format!("{function} links {sdk}:\n{stdout}"));
            }
        }
    }
    check(
        "only the processor links the discovery SDKs (shared's `discovery` feature)",
        violations,
    );
}

#[test]
fn the_pure_core_reads_no_clock() {
    let sources = production_sources();
    check(
        "shared::domain and shared::analysis take time as a parameter",
        offenders(
            sources
                .iter()
                .filter(|s| s.under("shared/src/domain/") || s.under("shared/src/analysis/")),
            &["Utc::now", "Local::now", "SystemTime::now", "Instant::now"],
        ),
    );
}

#[test]
fn mains_are_thin() {
    let mut violations = Vec::new();
    for entry in std::fs::read_dir(root().join("functions"))
        .unwrap()
        .flatten()
    {
        let main = entry.path().join("src/main.rs");
        let Ok(text) = std::fs::read_to_string(&main) else {
            continue;
        };
        let n = text.lines().count();
        if n > MAX_MAIN_LINES {
            violations.push(format!(
                "functions/{}/src/main.rs: {n} lines",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    check(
        "a function's main.rs is at most 40 lines: read config, build, run",
        violations,
    );
}

#[test]
fn production_files_fit_in_a_head() {
    let violations = production_sources()
        .iter()
        .filter(|s| s.lines.len() > MAX_LINES)
        .map(|s| format!("{}: {} lines", s.path, s.lines.len()))
        .collect();
    check(
        "no production source file passes 800 lines (tests excluded)",
        violations,
    );
}

#[test]
fn the_emulator_launcher_fits_in_a_head_too() {
    let mut violations = Vec::new();
    let dir = root().join("infra/emulator");
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "tests" && name != "__pycache__" {
                    stack.push(path);
                }
            } else if name.ends_with(".py") && !name.starts_with("test_") {
                let n = std::fs::read_to_string(&path).unwrap().lines().count();
                if n > MAX_LINES {
                    violations.push(format!("{}: {n} lines", path.display()));
                }
            }
        }
    }
    check("no emulator launcher module passes 800 lines", violations);
}

#[test]
fn no_build_output_is_tracked() {
    let Ok(out) = std::process::Command::new("git")
        .args(["ls-files"])
        .current_dir(root())
        .output()
    else {
        return; // not a git checkout (an unpacked source archive)
    };
    let listing = String::from_utf8_lossy(&out.stdout);
    let violations = listing
        .lines()
        .filter(|p| p.starts_with("target/") || p.contains("/target/"))
        .map(str::to_string)
        .collect();
    check("no file under any target/ is tracked", violations);
}

/// Each Lambda function is built from its own package directory. Cargo
/// resolves features for the packages it selects: run at the workspace root,
/// `cargo lambda build --bin api` selects every member, so the processor's
/// `discovery` feature would switch on in `shared` and the api would link
/// aws-sdk-ec2. Run in `functions/api` it selects the api alone.
#[test]
fn every_function_builds_from_its_own_package() {
    let template = finops_local::Template::load().expect("template.yaml parses");
    let mut uris: Vec<String> = template
        .of_type("AWS::Serverless::Function")
        .into_iter()
        .filter_map(|(_, props)| props.get("CodeUri")?.as_str().map(str::to_string))
        .collect();
    uris.sort();
    let mut packages: Vec<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/ lists")
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| format!("functions/{}", e.file_name().to_string_lossy()))
        .collect();
    packages.sort();
    assert_eq!(
        uris, packages,
        "each Rust function's CodeUri is its own package under functions/"
    );
}
