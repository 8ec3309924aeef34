//! The template front-end, as the commands use it (docs/templates.md):
//! which file a path names, the template resolved into a project by
//! `stratus-template` (its inline code written out first), then loaded by
//! the config crate like any `stratus.toml`; and `stratus init --from`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use stratus_config::{App, Diagnostic, Diagnostics};

/// What the command line says about a template.
#[derive(Debug, Default, Clone)]
pub(crate) struct Options {
    /// `--parameter-overrides Key=Value ...`
    pub(crate) overrides: Vec<String>,
    /// `--stack-name` (else the folder's name).
    pub(crate) stack_name: Option<String>,
    /// `--region` (else us-east-1).
    pub(crate) region: Option<String>,
    /// `--strict`: resources Stratus does not run are an error.
    pub(crate) strict: bool,
}

/// The template a path names: a `.yaml`/`.yml`/`.json` file, or in a
/// directory without `stratus.toml`, its `template.yaml` (`.yml`, `.json`).
pub(crate) fn template_of(path: &Path) -> Option<PathBuf> {
    let is_template = |p: &Path| {
        p.extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
    };
    if path.is_file() {
        return is_template(path).then(|| path.to_path_buf());
    }
    if path.join(stratus_config::FILE_NAME).is_file() {
        return None;
    }
    ["template.yaml", "template.yml", "template.json"]
        .iter()
        .map(|name| path.join(name))
        .find(|p| p.is_file())
}

/// A template loaded as a project, and what it resolved to.
pub(crate) fn load(
    file: &Path,
    options: &Options,
) -> Result<(App, Option<stratus_template::Project>), Diagnostics> {
    let (project, dir) = project(file, options)?;
    let mut app = stratus_config::load_str(&project.toml, file, &dir)
        .map_err(|errors| in_template(errors, &project, file))?;
    if let Some(region) = &options.region {
        app.server.region = region.clone();
    }
    Ok((app, Some(project)))
}

/// `stratus init --from TEMPLATE [DIR]`: the project file the template
/// amounts to, written beside it (its code paths are relative to it).
pub(crate) fn init_from(
    template: &Path,
    dir: Option<&Path>,
    overrides: Vec<String>,
) -> anyhow::Result<()> {
    let report = |errors: Diagnostics| {
        eprintln!("{errors}");
        anyhow::Error::new(crate::Reported)
    };
    let options = Options {
        overrides,
        ..Options::default()
    };
    let (project, here) = project(template, &options).map_err(report)?;
    if let Some(dir) = dir {
        let same = std::path::absolute(dir).ok() == Some(here.clone());
        anyhow::ensure!(
            same,
            "stratus.toml goes beside the template, in {} (its code paths are relative to it)",
            here.display()
        );
    }
    let file = here.join(stratus_config::FILE_NAME);
    anyhow::ensure!(
        !file.exists(),
        "{} exists: it is never overwritten",
        file.display()
    );
    // Checked as any project is before it is written.
    stratus_config::load_str(&project.toml, &file, &here)
        .map_err(|errors| report(in_template(errors, &project, template)))?;
    let text = format!(
        "# Written by `stratus init --from {}`: the template's values resolved.\n\n{}",
        template.display(),
        project.toml
    );
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    println!("wrote {}", file.display());
    Ok(())
}

/// A template's project and the folder its paths are relative to; its
/// inline code written out; what it holds that Stratus does not run said
/// once on stderr (or refused, `--strict`).
fn project(
    file: &Path,
    options: &Options,
) -> Result<(stratus_template::Project, PathBuf), Diagnostics> {
    let fail = |message: String| {
        Diagnostics(vec![Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message,
        }])
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| fail(format!("cannot read the template: {e}")))?;
    let dir = std::path::absolute(
        file.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut pairs = Vec::new();
    for o in &options.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| fail(format!("--parameter-overrides takes Key=Value, not {o:?}")))?;
        pairs.push((k.to_owned(), v.to_owned()));
    }
    let inputs = stratus_template::Inputs {
        region: options
            .region
            .clone()
            .unwrap_or_else(|| stratus_config::DEFAULT_REGION.to_owned()),
        stack_name: options.stack_name.clone().unwrap_or_else(|| {
            dir.file_name()
                .map_or_else(|| "stack".to_owned(), |n| n.to_string_lossy().into_owned())
        }),
        overrides: pairs,
        files: Default::default(),
    };
    // The definitions and includes the template names, beside it.
    let mut inputs = inputs;
    for rel in stratus_template::local_files(&text) {
        let path = dir.join(&rel);
        if let Ok(content) = std::fs::read_to_string(&path) {
            inputs.files.insert(rel, content);
        }
    }
    let project = stratus_template::project(&text, &inputs)
        .map_err(|errors| Diagnostics(errors.iter().map(|e| e.diagnostic(file)).collect()))?;
    if !project.not_run.is_empty() {
        let list: Vec<String> = project
            .not_run
            .iter()
            .map(|(id, ty)| format!("{id} ({ty})"))
            .collect();
        if options.strict {
            return Err(fail(format!(
                "--strict: the template holds resources Stratus does not run: {}",
                list.join(", ")
            )));
        }
        eprintln!(
            "{}: not run by Stratus (the rest is served): {}",
            file.display(),
            list.join(", ")
        );
    }
    for (rel, code) in &project.inline {
        let path = dir.join(rel);
        // Written only when it changed: a reload's watcher sees no edit.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(code.as_str()) {
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, code));
            written.map_err(|e| {
                fail(format!(
                    "cannot write inline code to {}: {e}",
                    path.display()
                ))
            })?;
        }
    }
    Ok((project, dir))
}

/// Mistakes the project's checks found in the project file a template
/// amounts to, placed in the template: at the resource the key came from
/// (`functions.NAME.code` → `Resources.Fn`), else with no line (the
/// generated file's lines mean nothing to the reader).
fn in_template(
    errors: Diagnostics,
    project: &stratus_template::Project,
    file: &Path,
) -> Diagnostics {
    let place = |key: &str| {
        project
            .places
            .iter()
            .filter(|(k, ..)| key == k || key.starts_with(&format!("{k}.")))
            .max_by_key(|(k, ..)| k.len())
    };
    Diagnostics(
        errors
            .0
            .into_iter()
            .map(|d| {
                let (path, line, column) = match place(&d.key) {
                    Some((_, path, line, column)) => (path.clone(), *line, *column),
                    None => (String::new(), 0, 0),
                };
                Diagnostic {
                    file: file.to_path_buf(),
                    line,
                    column,
                    message: if path.is_empty() {
                        d.message
                    } else {
                        format!("{}: {}", d.key, d.message)
                    },
                    key: if path.is_empty() { d.key } else { path },
                }
            })
            .collect(),
    )
}

/// A `stratus.toml` whose APIs name OpenAPI documents (`[apis.NAME]
/// openapi = "api.yaml"`): once the file itself is valid (its mistakes
/// named with their lines), each document's operations are written into
/// its API (what the file names already is kept) and the result loaded.
/// Mistakes in a document are named with its own line; mistakes of what
/// it added, with their key.
pub(crate) fn with_openapi(
    app: stratus_config::App,
) -> Result<stratus_config::App, stratus_config::Diagnostics> {
    use stratus_config::{Diagnostic, Diagnostics};
    let (file, dir) = (app.file.clone(), app.project_dir.clone());
    let Ok(mut table) = app.text.parse::<toml::Table>() else {
        return Ok(app);
    };
    let mut expanded = false;
    let mut errors = Vec::new();
    if let Some(toml::Value::Table(apis)) = table.get_mut("apis") {
        for (name, api) in apis.iter_mut() {
            let Some(api) = api.as_table_mut() else {
                continue;
            };
            let Some(toml::Value::String(doc)) = api.remove("openapi") else {
                continue;
            };
            expanded = true;
            let doc_path = dir.join(&doc);
            let http = api.get("type").and_then(toml::Value::as_str) == Some("http");
            let applied = std::fs::read_to_string(&doc_path)
                .map_err(|e| {
                    (
                        0,
                        0,
                        String::new(),
                        format!("cannot read the OpenAPI document: {e}"),
                    )
                })
                .and_then(|doc_text| {
                    stratus_template::apply_openapi(api, &doc_text, http)
                        .map_err(|e| (e.line, e.column, e.path, e.message))
                });
            if let Err((line, column, at, message)) = applied {
                errors.push(Diagnostic {
                    file: doc_path.clone(),
                    line,
                    column,
                    key: if at.is_empty() {
                        format!("apis.{name}.openapi")
                    } else {
                        at
                    },
                    message,
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    if !expanded {
        return Ok(app);
    }
    let text = toml::to_string(&table).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: file.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot write the project with its OpenAPI documents: {e}"),
        }])
    })?;
    stratus_config::load_str(&text, &file, &dir).map_err(|Diagnostics(ds)| {
        // Lines of the written-out project mean nothing to its author:
        // the key says where.
        Diagnostics(
            ds.into_iter()
                .map(|d| Diagnostic {
                    line: 0,
                    column: 0,
                    message: format!("{} (with the API's OpenAPI document)", d.message),
                    ..d
                })
                .collect(),
        )
    })
}
