//! Writes the benchmark workload as Lambda event JSON files.
//!
//! `cargo run -p bench --bin workload -- [DIR]` (default `target/workload`).

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/workload".into()),
    );
    std::fs::create_dir_all(&dir)?;
    for n in [100, 1_000, 10_000] {
        for (i, event) in bench::stream_events(n, 7).iter().enumerate() {
            std::fs::write(dir.join(format!("stream-{n}-{i}.json")), event.to_string())?;
        }
        let sqs = bench::sqs_events(n, 7);
        std::fs::write(
            dir.join(format!("sqs-{n}.json")),
            serde_json::to_string(&sqs)?,
        )?;
    }
    println!("workload written to {}", dir.display());
    Ok(())
}
