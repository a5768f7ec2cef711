//! Full and incremental capture over SSH into S3 (moto), restore to a file, records in
//! DynamoDB, and the points listing.

use anyhow::Result;
use ferry_core::keys;
use ferry_tests::disk;
use ferry_tests::stack::Stack;

#[test]
fn full_then_incremental_capture_over_ssh_to_s3_restores_byte_for_byte() -> Result<()> {
    let (base, changed) = disk::workload()?;
    let mut stack = Stack::new()?.with_moto()?;
    stack.add_host("web1", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let ferry = stack.ferry("s3://ferry-store/prod", &[stack.entry("web1", &kh)])?;

    let init = ferry.json(&["store", "init"])?;
    assert_eq!(init["created"], true);
    assert_eq!(
        ferry.json(&["store", "init"])?["created"],
        false,
        "init is idempotent"
    );

    let full = ferry.json(&["capture", "web1"])?;
    let size = std::fs::metadata(&base)?.len();
    assert_eq!(full["host"], "web1");
    assert_eq!(full["consistency"], "crash");
    assert_eq!(full["bytes_read"], size);
    assert_eq!(full["image_blake3"], disk::blake3(&base)?);
    assert!(
        full["bytes_uploaded"].as_u64().unwrap() < size / 2,
        "compressed and deduplicated: {full}"
    );

    // A day of changes on the host, then an incremental capture.
    disk::copy(&changed, &stack.host("web1").disk)?;
    let inc = ferry.json(&["capture", "web1"])?;
    assert_eq!(inc["parent"], full["point"]);
    let new = inc["bytes_new"].as_u64().unwrap();
    assert!(
        new > 0 && new < size / 10,
        "only the changes are new: {inc}"
    );
    assert!(inc["bytes_uploaded"].as_u64().unwrap() < full["bytes_uploaded"].as_u64().unwrap() / 5);

    let points = ferry.json(&["points", "web1"])?;
    let ids: Vec<&str> = points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["point"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            full["point"].as_str().unwrap(),
            inc["point"].as_str().unwrap()
        ]
    );

    // Both points restore byte for byte.
    for (point, source) in [(&full, &base), (&inc, &changed)] {
        let out = stack.path().join("restored.img");
        let id = point["point"].as_str().unwrap();
        let r = ferry.json(&[
            "restore",
            "web1",
            "--point",
            id,
            "--to",
            out.to_str().unwrap(),
        ])?;
        assert_eq!(r["point"], id);
        assert_eq!(disk::sha256(&out)?, disk::sha256(source)?);
        assert_eq!(disk::blake3(&out)?, point["image_blake3"].as_str().unwrap());
    }

    // DynamoDB holds the host and both points, as the aws CLI shows them.
    let moto = stack.moto.as_ref().unwrap();
    let items = moto.aws(&[
        "dynamodb",
        "query",
        "--table-name",
        "ferry",
        "--key-condition-expression",
        "pk = :pk",
        "--expression-attribute-values",
        &format!(r#"{{":pk":{{"S":"{}"}}}}"#, keys::host_pk("web1")),
    ])?;
    let items = items["Items"].as_array().unwrap();
    let sks: Vec<&str> = items
        .iter()
        .map(|i| i["sk"]["S"].as_str().unwrap())
        .collect();
    assert_eq!(sks.len(), 3, "{sks:?}");
    assert!(sks.contains(&"HOST"));
    let host = items.iter().find(|i| i["sk"]["S"] == "HOST").unwrap();
    assert_eq!(host["last_point"]["S"], inc["point"]);
    assert!(host["host_key"]["S"]
        .as_str()
        .unwrap()
        .starts_with("SHA256:"));
    let p = items
        .iter()
        .find(|i| i["sk"]["S"] == keys::point_sk(inc["point"].as_str().unwrap()))
        .unwrap();
    assert_eq!(p["state"]["S"], "captured");
    assert_eq!(p["image_size"]["N"], size.to_string());
    assert!(p["manifest_key"]["S"]
        .as_str()
        .unwrap()
        .starts_with("points/web1/"));

    // The store is in S3, laid out as documented.
    let listing = moto.aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        "ferry-store",
        "--prefix",
        "prod/",
    ])?;
    let keys: Vec<&str> = listing["Contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"prod/config"));
    assert!(keys.iter().any(|k| k.starts_with("prod/packs/")));
    assert!(keys.iter().any(|k| k.starts_with("prod/index/")));
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("prod/points/web1/"))
            .count(),
        2
    );
    Ok(())
}
