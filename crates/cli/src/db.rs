//! `stratus db NAME`: SQL on a project's database, straight to it (no
//! server needed): a prompt, one statement (`-e`), or `--migrate`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use stratus_state::databases::{Db, Value};

pub(crate) fn run(
    name: &str,
    execute: Option<&str>,
    migrate: bool,
    project: &Path,
) -> anyhow::Result<()> {
    let app = crate::load(project)?;
    let Some(spec) = app.databases.iter().find(|d| d.name == name) else {
        let known: Vec<&str> = app.databases.iter().map(|d| d.name.as_str()).collect();
        anyhow::bail!(
            "no database {name:?} in {} (databases: {})",
            app.file.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let db = stratus_server::open_database(&app, spec).await?;
        if migrate {
            let applied = db
                .migrate(spec.migrations.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for m in &applied {
                println!("applied {m}");
            }
            let all = db
                .applied_migrations()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{name}: {} applied, {} now ({})",
                all.len(),
                applied.len(),
                db.engine
            );
            return Ok(());
        }
        if let Some(sql) = execute {
            return statement(&db, sql)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"));
        }
        prompt(&db).await
    })
}

/// Statements from stdin, each ended by `;` at the end of a line; errors
/// are printed and the prompt goes on. `\q` or end of input leaves.
async fn prompt(db: &Db) -> anyhow::Result<()> {
    let tty = std::io::stdin().is_terminal();
    if tty {
        println!(
            "{} ({}): end statements with ;  \\q quits",
            db.name, db.engine
        );
    }
    let mut pending = String::new();
    let mut failed = false;
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if tty {
            print!("{}{} ", db.name, if pending.is_empty() { ">" } else { "…" });
            std::io::stdout().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        if pending.is_empty() && line.trim() == "\\q" {
            break;
        }
        pending.push_str(&line);
        pending.push('\n');
        if line.trim_end().ends_with(';') {
            let sql = std::mem::take(&mut pending);
            if let Err(e) = statement(db, sql.trim().trim_end_matches(';')).await {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if !pending.trim().is_empty() {
        if let Err(e) = statement(db, pending.trim()).await {
            eprintln!("error: {e}");
            failed = true;
        }
    }
    // Piped input runs every statement, and exits non-zero if one failed.
    if failed && !tty {
        anyhow::bail!("a statement failed");
    }
    Ok(())
}

async fn statement(db: &Db, sql: &str) -> Result<(), stratus_state::databases::DbError> {
    let out = db
        .execute(sql, &[], None, stratus_state::databases::Budget::UNBOUNDED)
        .await?;
    if out.columns.is_empty() {
        println!("{} updated", rows(out.updated));
        return Ok(());
    }
    let mut table: Vec<Vec<String>> = vec![out.columns.iter().map(|(n, _)| n.clone()).collect()];
    table.extend(out.rows.iter().map(|r| r.iter().map(show).collect()));
    print!("{}", crate::keys::table(&table));
    println!("({})", rows(out.rows.len() as u64));
    Ok(())
}

fn rows(n: u64) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

/// A value as a terminal shows it (psql's spellings).
fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => if *b { "t" } else { "f" }.into(),
        Value::Long(n) => n.to_string(),
        Value::Double(d) => d.to_string(),
        Value::String(s) | Value::Decimal(s) => s.clone(),
        Value::Blob(b) => format!("\\x{}", hex::encode(b)),
        Value::Array(_, items) => format!(
            "{{{}}}",
            items.iter().map(show).collect::<Vec<_>>().join(",")
        ),
    }
}
