//! Failure behaviour of `Mke3Client` against the in-process MKE 3 server: every injected fault
//! gives a clear error or a successful retry, and an export is all or nothing.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_core::Secret;
use ferry_flow_mke::export_rbac;
use ferry_flow_mke::mke3::{Mke3Api, Mke3Error};
use ferry_mke3_api::{ClientError, Mke3Client, Options};
use ferry_mke3_sim::{Fault, FaultKind, Sim, SimOptions, generated_model};

fn options(sim: &Sim) -> Options {
    let mut o = Options::new(sim.url());
    o.ca_cert_pem = Some(sim.ca_pem().as_bytes().to_vec());
    o.backoff = Duration::from_millis(5);
    o.max_backoff = Duration::from_millis(20);
    o.timeout = Duration::from_secs(5);
    o.retries = 3;
    o
}

async fn sim() -> Sim {
    Sim::start(generated_model(60, 3, 9, 80), SimOptions::default())
        .await
        .unwrap()
}

async fn login(_sim: &Sim, o: Options) -> Result<Mke3Client, ClientError> {
    let so = SimOptions::default();
    Mke3Client::login(o, &so.username, &Secret::new(so.password)).await
}

/// How many requests whose log line starts with `prefix` the server saw.
fn count(sim: &Sim, prefix: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.starts_with(prefix))
        .count()
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized_and_not_retried() {
    let sim = sim().await;
    let err = Mke3Client::login(options(&sim), "admin", &Secret::new("wrong".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Api(Mke3Error::Unauthorized)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "MKE 3 refused the credentials (401)");
    assert_eq!(count(&sim, "POST /auth/login"), 1);
}

#[tokio::test]
async fn an_ended_session_logs_in_again_and_repeats_the_call() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    sim.expire_tokens();
    let page = client.accounts(None, 10).await.unwrap();
    assert_eq!(page.items.len(), 10);
    assert_eq!(count(&sim, "POST /auth/login"), 2);
    // Refused once with the old token, then answered with the new one.
    assert_eq!(count(&sim, "GET /enzi/v0/accounts"), 2);
}

#[tokio::test]
async fn calls_refused_together_log_in_again_once() {
    let sim = sim().await;
    let client = std::sync::Arc::new(login(&sim, options(&sim)).await.unwrap());
    sim.expire_tokens();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let c = std::sync::Arc::clone(&client);
        calls.spawn(async move { c.ping().await });
    }
    while let Some(r) = calls.join_next().await {
        assert_eq!(r.unwrap(), Ok(()));
    }
    assert_eq!(count(&sim, "POST /auth/login"), 2);
}

#[tokio::test]
async fn a_refused_login_after_the_session_ended_is_unauthorized() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    sim.expire_tokens();
    // The password was changed meanwhile: MKE 3 refuses the new login.
    sim.inject(Fault::on("/auth/login", FaultKind::Status(401)).times(u32::MAX));
    assert_eq!(client.ping().await, Err(Mke3Error::Unauthorized));
    assert_eq!(count(&sim, "POST /auth/login"), 2);
    // No loop: the next call tries once more and stops there too.
    assert_eq!(client.ping().await, Err(Mke3Error::Unauthorized));
    assert_eq!(count(&sim, "POST /auth/login"), 3);
}

#[tokio::test]
async fn the_client_bundle_comes_back_as_served_or_not_found() {
    let zip = ferry_mke3_sim::client_bundle("https://127.0.0.1:6443", "not a ca", None).unwrap();
    let with = Sim::start(
        generated_model(5, 1, 1, 5),
        SimOptions {
            client_bundle: Some(zip.clone()),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let client = login(&with, options(&with)).await.unwrap();
    assert_eq!(client.client_bundle().await.unwrap(), zip);

    let without = sim().await;
    let client = login(&without, options(&without)).await.unwrap();
    let err = client.client_bundle().await.unwrap_err();
    assert!(
        matches!(&err, Mke3Error::NotFound(m) if m.contains("GET /api/clientbundle")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_token_and_password_never_show_in_debug_output() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    let text = format!("{client:?}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(!text.contains("sim-token"), "{text}");
    assert!(!text.contains(&SimOptions::default().password), "{text}");
}

#[tokio::test]
async fn server_errors_are_retried_until_they_pass() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    sim.inject(Fault::on("/enzi/v0/accounts", FaultKind::Status(500)).times(2));
    let page = client.accounts(None, 10).await.unwrap();
    assert_eq!(page.items.len(), 10);
    assert_eq!(count(&sim, "GET /enzi/v0/accounts"), 3);
}

#[tokio::test]
async fn a_server_error_that_stays_is_unavailable_after_the_retries() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    sim.inject(Fault::on("/roles", FaultKind::Status(503)).times(u32::MAX));
    let err = client.roles().await.unwrap_err();
    assert!(matches!(err, Mke3Error::Unavailable(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("GET /roles") && text.contains("503"),
        "{text}"
    );
    assert_eq!(count(&sim, "GET /roles"), 4, "1 attempt + 3 retries");
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    sim.inject(Fault::on("/collectionGrants", FaultKind::Status(429)).times(2));
    let page = client.grants(None, 10).await.unwrap();
    assert_eq!(page.items.len(), 10);
    assert_eq!(count(&sim, "GET /collectionGrants"), 3);
}

#[tokio::test]
async fn forbidden_and_not_found_are_clear_and_not_retried() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    sim.inject(Fault::on("/collections", FaultKind::Status(403)));
    let err = client.collections(None, 10).await.unwrap_err();
    assert!(matches!(err, Mke3Error::Forbidden(_)), "{err:?}");
    assert!(err.to_string().contains("GET /collections"), "{err}");
    assert_eq!(count(&sim, "GET /collections"), 1);

    let err = client.teams("no-such-org", None, 10).await.unwrap_err();
    assert!(matches!(err, Mke3Error::NotFound(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("/enzi/v0/accounts/no-such-org/teams") && text.contains("not found"),
        "{text}"
    );
    assert_eq!(count(&sim, "GET /enzi/v0/accounts/no-such-org/teams"), 1);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let sim = sim().await;
    let mut o = options(&sim);
    o.timeout = Duration::from_secs(1);
    let client = login(&sim, o).await.unwrap();
    sim.inject(Fault::on(
        "/version",
        FaultKind::Slow(Duration::from_secs(3)),
    ));
    assert_eq!(client.version().await.unwrap(), "3.7.15");
    assert_eq!(count(&sim, "GET /version"), 2);

    sim.inject(Fault::on("/version", FaultKind::Slow(Duration::from_secs(3))).times(u32::MAX));
    let err = client.version().await.unwrap_err();
    assert!(matches!(err, Mke3Error::Timeout(_)), "{err:?}");
    assert!(err.to_string().contains("GET /version"), "{err}");
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    sim.inject(Fault::on("/api/ucp/config-toml", FaultKind::Drop).times(2));
    let toml = client.config_toml().await.unwrap();
    assert_eq!(toml, SimOptions::default().config_toml);

    sim.inject(Fault::on("/_ping", FaultKind::Drop).times(u32::MAX));
    let err = client.ping().await.unwrap_err();
    assert!(matches!(err, Mke3Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("GET /_ping"), "{err}");
}

#[tokio::test]
async fn a_broken_page_in_the_middle_names_the_page_and_the_json_path() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    // The third page of accounts.
    let third = sim.model().accounts[20].name.clone();
    sim.inject(
        Fault::on("/enzi/v0/accounts", FaultKind::BadShape)
            .query(&format!("start={third}"))
            .times(u32::MAX),
    );
    let err = export_rbac(&client, 10).await.map(|_| ()).unwrap_err();
    match &err {
        Mke3Error::Shape { endpoint, detail } => {
            assert!(endpoint.contains(&format!("start={third}")), "{endpoint}");
            assert!(detail.contains("accounts[0]"), "{detail}");
            assert!(detail.contains("missing field `name`"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Not retried: a wrong shape is not transient.
    let url = format!("GET /enzi/v0/accounts?filter=all&limit=10&start={third}");
    assert_eq!(count(&sim, &url), 1);
}

#[tokio::test]
async fn a_truncated_body_is_a_shape_error() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    sim.inject(Fault::on("/collectionGrants", FaultKind::Truncated).skip(3));
    let err = export_rbac(&client, 10).await.map(|_| ()).unwrap_err();
    match &err {
        Mke3Error::Shape { endpoint, detail } => {
            assert!(endpoint.starts_with("GET /collectionGrants"), "{endpoint}");
            assert!(detail.contains("not valid JSON"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_export_retries_transient_faults_and_round_trips() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    sim.inject(Fault::on("/enzi/v0/accounts", FaultKind::Status(500)).skip(2));
    sim.inject(Fault::on("/enzi/v0/accounts/org001/teams", FaultKind::Drop));
    sim.inject(Fault::on("/collections", FaultKind::Status(429)).skip(1));
    sim.inject(
        Fault::on(
            "/collectionGrants",
            FaultKind::Slow(Duration::from_millis(50)),
        )
        .skip(4),
    );
    let export = export_rbac(&client, 10).await.unwrap();
    assert_eq!(export, sim.model());
}

#[tokio::test]
async fn tls_is_verified_against_the_given_ca_only() {
    let sim = sim().await;
    // No CA: the test CA is not a public root.
    let mut o = options(&sim);
    o.ca_cert_pem = None;
    let err = login(&sim, o).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Api(Mke3Error::Tls(_))),
        "{err:?}"
    );
    assert!(err.to_string().contains("certificate"), "{err}");

    // Another CA.
    let mut o = options(&sim);
    o.ca_cert_pem = Some(sim.other_ca_pem().as_bytes().to_vec());
    let err = login(&sim, o).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Api(Mke3Error::Tls(_))),
        "{err:?}"
    );

    // TLS failures are not retried: no request reached the server.
    assert!(sim.requests().is_empty());

    // Insecure, only when asked.
    let mut o = options(&sim);
    o.ca_cert_pem = None;
    o.insecure_skip_tls_verify = true;
    let client = login(&sim, o).await.unwrap();
    client.ping().await.unwrap();
}

#[tokio::test]
async fn bad_urls_and_ca_files_are_refused_before_any_traffic() {
    let sim = sim().await;
    let mut o = options(&sim);
    o.url = sim.url().replace("https://", "http://");
    let err = login(&sim, o).await.unwrap_err();
    assert!(matches!(err, ClientError::Url { .. }), "{err:?}");
    assert!(err.to_string().contains("https"), "{err}");

    let mut o = options(&sim);
    o.url = "not a url".into();
    assert!(matches!(
        login(&sim, o).await.unwrap_err(),
        ClientError::Url { .. }
    ));

    let mut o = options(&sim);
    o.ca_cert_pem = Some(b"not a certificate".to_vec());
    let err = login(&sim, o).await.unwrap_err();
    assert!(matches!(err, ClientError::CaCert(_)), "{err:?}");
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn nothing_listens_is_unavailable() {
    // Bind and drop a listener to get a port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut o = Options::new(format!("https://127.0.0.1:{port}"));
    o.backoff = Duration::from_millis(1);
    o.retries = 1;
    let err = Mke3Client::login(o, "admin", &Secret::new("x".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Api(Mke3Error::Unavailable(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_config_toml_round_trips_through_put() {
    let sim = sim().await;
    let client = login(&sim, options(&sim)).await.unwrap();
    let new = "[cluster_config]\n  calico_kdd = true\n";
    let message = client.put_config_toml(new).await.unwrap();
    assert_eq!(
        message,
        "Calico datastore upgrade from etcd to kdd successful"
    );
    assert_eq!(sim.config_toml(), new);
    assert_eq!(client.config_toml().await.unwrap(), new);
}
