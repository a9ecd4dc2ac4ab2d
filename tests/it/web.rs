//! The embedded web page as a browser fetches it: compressed assets, ETags and revalidation, and the
//! limits the page reads from `GET /api/v1/config`.

use std::io::Read;

use crate::harness::spawn_app_with;

#[tokio::test]
async fn config_tells_clients_the_server_limits_without_a_token() {
    let app =
        spawn_app_with(&["--max-message-bytes", "1234", "--max-frame-bytes", "20000", "--max-body-bytes", "300000"])
            .await;
    let (s, b) = app.get(None, "/api/v1/config").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        serde_json::json!({"max_message_bytes": 1234, "max_frame_bytes": 20000, "max_body_bytes": 300000,
                           "max_upload_bytes": null})
    );
}

async fn fetch(app: &crate::harness::TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.http.get(app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn assets_are_compressed_tagged_and_revalidated() {
    let app = spawn_app_with(&[]).await;
    for path in ["/app.js", "/", "/style.css"] {
        let plain = fetch(&app, path, &[]).await;
        assert_eq!(plain.status(), 200);
        assert_eq!(header(&plain, "content-encoding"), None, "{path}: no Accept-Encoding, no encoding");
        assert_eq!(header(&plain, "vary").as_deref(), Some("accept-encoding"));
        assert_eq!(header(&plain, "cache-control").as_deref(), Some("no-cache"));
        let plain_tag = header(&plain, "etag").expect("an ETag");
        let original = plain.bytes().await.unwrap().to_vec();

        let br = fetch(&app, path, &[("accept-encoding", "gzip, deflate, br, zstd")]).await;
        assert_eq!(header(&br, "content-encoding").as_deref(), Some("br"), "{path}");
        let br_tag = header(&br, "etag").unwrap();
        assert_ne!(br_tag, plain_tag, "each encoding has its own ETag");
        let packed = br.bytes().await.unwrap().to_vec();
        assert!(packed.len() * 2 < original.len(), "{path}: {} → {} bytes", original.len(), packed.len());
        let mut unpacked = Vec::new();
        brotli::Decompressor::new(&packed[..], 4096).read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, original);

        let gz = fetch(&app, path, &[("accept-encoding", "gzip;q=1, br;q=0")]).await;
        assert_eq!(header(&gz, "content-encoding").as_deref(), Some("gzip"), "{path}");
        let gz_tag = header(&gz, "etag").unwrap();
        let packed = gz.bytes().await.unwrap().to_vec();
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, original);

        // A reload: the browser sends back the tag it holds and gets 304 without a body.
        let again = fetch(&app, path, &[("accept-encoding", "br, gzip"), ("if-none-match", &br_tag)]).await;
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(header(&again, "etag").as_deref(), Some(br_tag.as_str()));
        assert!(again.bytes().await.unwrap().is_empty());
        let again = fetch(&app, path, &[("accept-encoding", "gzip"), ("if-none-match", &gz_tag)]).await;
        assert_eq!(again.status(), 304);
        // A tag of another encoding (or of older content) is not a match: the full answer comes.
        let other = fetch(&app, path, &[("accept-encoding", "br"), ("if-none-match", &plain_tag)]).await;
        assert_eq!(other.status(), 200);
        let stale = fetch(&app, path, &[("if-none-match", "\"0123456789abcdef\"")]).await;
        assert_eq!(stale.status(), 200);
        assert_eq!(stale.bytes().await.unwrap().to_vec(), original);
    }
    // Tiny files and images go as they are, still tagged.
    let icon = fetch(&app, "/favicon.svg", &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(icon.status(), 200);
    assert_eq!(header(&icon, "content-encoding"), None);
    assert!(header(&icon, "etag").is_some());
    // Security headers still apply to the page.
    let page = fetch(&app, "/", &[("accept-encoding", "br")]).await;
    assert!(header(&page, "content-security-policy").unwrap().contains("script-src 'self'"));
}
