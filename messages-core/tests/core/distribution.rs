//! The PostgreSQL schema is ready to be distributed by thread (Citus, co-located on
//! `thread_id`): every table carries `thread_id`, in its primary key and in every unique
//! index. Read from PostgreSQL's catalog after the migrations, so a new table or index that
//! breaks the rule fails here. `docs/scaling.md` gives the distribution calls.

use messages_core::testing::postgres::TestDatabase;

/// Tables that are not the service's data and stay on the coordinator as local tables.
const LOCAL: &[&str] = &["refinery_schema_history"];

#[tokio::test]
async fn every_table_is_keyed_by_thread() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let _migrated = db.store().await;
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        tables.iter().any(|t| t == "messages"),
        "the migrations ran in this schema: {tables:?}"
    );
    let mut broken = Vec::new();
    for table in tables.iter().filter(|t| !LOCAL.contains(&t.as_str())) {
        // Every unique index (the primary key is one), with its columns.
        let indexes = client
            .query(
                "SELECT i.relname, x.indisprimary, \
                        array(SELECT a.attname::text FROM unnest(x.indkey) k \
                              JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k) \
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                 JOIN pg_class t ON t.oid = x.indrelid \
                 JOIN pg_namespace n ON n.oid = t.relnamespace \
                 WHERE n.nspname = current_schema() AND t.relname = $1 AND x.indisunique",
                &[table],
            )
            .await
            .expect("indexes");
        if !indexes.iter().any(|r| r.get::<_, bool>(1)) {
            broken.push(format!("{table}: no primary key"));
        }
        for index in &indexes {
            let name: String = index.get(0);
            let columns: Vec<String> = index.get(2);
            if !columns.iter().any(|c| c == "thread_id") {
                broken.push(format!(
                    "{table}: unique index {name} on {columns:?} lacks thread_id"
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "not distributable by thread_id:\n{}",
        broken.join("\n")
    );
}
