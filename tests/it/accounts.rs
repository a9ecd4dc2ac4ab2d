use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn registration_enforces_the_documented_rules() {
    let app = spawn_app().await;
    let (s, b) = app
        .post(
            None,
            "/api/v1/register",
            json!({"username": "Alice", "password": "password-1", "display_name": "Alice A."}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["username"], "Alice");
    assert_eq!(b["display_name"], "Alice A.");
    let cases = [
        (json!({"username": "alice", "password": "password-2"}), 409, "username_taken"),
        (json!({"username": "ab", "password": "password-2"}), 400, "invalid_username"),
        (json!({"username": "9lives", "password": "password-2"}), 400, "invalid_username"),
        (json!({"username": "x'; DROP TABLE users;--", "password": "password-2"}), 400, "invalid_username"),
        (json!({"username": "bobby", "password": "short"}), 400, "invalid_password"),
        (json!({"username": "bobby", "password": "password-2", "display_name": "  "}), 400, "invalid_display_name"),
        (json!({"username": "bobby"}), 400, "bad_request"),
    ];
    for (body, status, code) in cases {
        let (s, b) = app.post(None, "/api/v1/register", body.clone()).await;
        assert_eq!((s, b["error"]["code"].as_str().unwrap_or("")), (status, code), "{body} -> {b}");
        assert!(b["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Not JSON at all.
    let resp = app
        .http
        .post(app.url("/api/v1/register"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let b: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["code"], "bad_request");
}

#[tokio::test]
async fn login_answers_alike_for_unknown_users_and_wrong_passwords_and_throttles() {
    let app = spawn_app_with(&["--login-free-failures", "3"]).await;
    app.user("carol").await;
    let (s1, b1) = app.post(None, "/api/v1/login", json!({"username": "carol", "password": "wrong-password"})).await;
    let (s2, b2) = app.post(None, "/api/v1/login", json!({"username": "nobody", "password": "wrong-password"})).await;
    assert_eq!((s1, &b1), (s2, &b2), "unknown user and wrong password look the same");
    assert_eq!(s1, 401);
    assert_eq!(b1["error"]["code"], "invalid_credentials");
    // Login ignores case.
    let (s, _) = app.post(None, "/api/v1/login", json!({"username": "CAROL", "password": "password-carol"})).await;
    assert_eq!(s, 200);
    // Success reset the count: three failures are free, the fourth attempt already waits.
    for _ in 0..3 {
        let (s, _) = app.post(None, "/api/v1/login", json!({"username": "carol", "password": "wrong-password"})).await;
        assert_eq!(s, 401);
    }
    let resp = app
        .http
        .post(app.url("/api/v1/login"))
        .json(&json!({"username": "carol", "password": "password-carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429, "even the right password waits out the pause");
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry));
    let b: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["code"], "too_many_attempts");
}

#[tokio::test]
async fn tokens_are_checked_and_logout_ends_the_session() {
    let app = spawn_app().await;
    let token = app.user("dave").await;
    let (s, b) = app.get(Some(&token), "/api/v1/me").await;
    assert_eq!((s, b["username"].as_str()), (200, Some("dave")));
    for bad in [
        "",
        "nonsense",
        &format!("{token}x"),
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwic2lkIjoieCIsImV4cCI6OTk5OTk5OTk5OX0.",
    ] {
        let (s, b) = app.get(Some(bad), "/api/v1/me").await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("unauthorized")), "token {bad:?}");
    }
    let (s, b) = app.get(None, "/api/v1/me").await;
    assert_eq!((s, b["error"]["code"].as_str()), (401, Some("unauthorized")));

    let resp = app
        .http
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .json(&json!({"display_name": "Dave D."}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let b: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(b["display_name"], "Dave D.");

    let other = app.login("dave").await;
    let (s, _) = app.post(Some(&token), "/api/v1/logout", json!({})).await;
    assert_eq!(s, 204);
    let (s, _) = app.get(Some(&token), "/api/v1/me").await;
    assert_eq!(s, 401, "a logged-out token is refused");
    let (s, _) = app.get(Some(&other), "/api/v1/me").await;
    assert_eq!(s, 200, "other sessions of the user stay");
}
