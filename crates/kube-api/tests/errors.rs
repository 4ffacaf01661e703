//! Errors and kubeconfig handling of `KubeCluster` against the in-process API server.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use ferry_core::cluster::ObjectRef;
use ferry_core::{ClusterApi, ClusterError};
use ferry_kube_api::testing::{KubeFault, KubeSeed, KubeServer, TOKEN};
use ferry_kube_api::{KubeApiError, KubeCluster, KubeOptions};
use ferry_testing::conformance::cluster::standard_seed;
use serde_json::json;

fn seed() -> KubeSeed {
    let s = standard_seed();
    KubeSeed {
        version: s.version,
        nodes: s.nodes,
        pods: s.pods,
        pdbs: s.pdbs,
    }
}

fn options() -> KubeOptions {
    KubeOptions {
        read_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
        ..KubeOptions::default()
    }
}

async fn client(server: &KubeServer, token: &str, dir: &Path) -> KubeCluster {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, server.kubeconfig(token)).unwrap();
    KubeCluster::from_kubeconfig(&path, options())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refused_token_is_unauthorized() {
    let server = KubeServer::start(&seed()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, "wrong-token", dir.path()).await;
    assert_eq!(c.nodes().await, Err(ClusterError::Unauthorized));
}

#[tokio::test]
async fn forbidden_conflict_and_server_errors_map_to_their_kinds() {
    let server = KubeServer::start(&seed()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, TOKEN, dir.path()).await;

    server.inject(KubeFault::status("/api/v1/nodes", 403));
    match c.nodes().await {
        Err(ClusterError::Forbidden(m)) => assert!(m.contains("list nodes"), "{m}"),
        other => panic!("{other:?}"),
    }

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "x", "namespace": "shop"}, "data": {}});
    server.inject(KubeFault::status("/api/v1/namespaces/shop/configmaps/x", 409).method("PATCH"));
    match c.apply(&cm).await {
        Err(ClusterError::Conflict(m)) => assert!(m.contains("ConfigMap shop/x"), "{m}"),
        other => panic!("{other:?}"),
    }

    server.inject(KubeFault::status("/api/v1/pods", 500));
    assert!(matches!(
        c.pods(None).await,
        Err(ClusterError::Unavailable(_))
    ));

    server.inject(KubeFault::status("/api/v1/namespaces/shop/configmaps/x", 403).method("DELETE"));
    let r = ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("shop".into()),
        name: "x".into(),
    };
    assert!(matches!(
        c.delete(&r).await,
        Err(ClusterError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = KubeServer::start(&seed()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, server.kubeconfig(TOKEN)).unwrap();
    let o = KubeOptions {
        read_timeout: Duration::from_millis(300),
        ..options()
    };
    let c = KubeCluster::from_kubeconfig(&path, o).await.unwrap();
    server.inject(KubeFault::delay("/api/v1/nodes", Duration::from_secs(3)));
    match c.nodes().await {
        Err(ClusterError::Timeout { what, .. }) => assert!(what.contains("list nodes"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn nothing_listening_is_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"),
    )
    .unwrap();
    let c = KubeCluster::from_kubeconfig(&path, options())
        .await
        .unwrap();
    assert!(matches!(
        c.server_version().await,
        Err(ClusterError::Unavailable(_))
    ));
}

#[tokio::test]
async fn apply_is_server_side_with_field_manager_ferry() {
    let server = KubeServer::start(&seed()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, TOKEN, dir.path()).await;
    c.apply(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "mke3-admins"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "admin"}]}))
        .await
        .unwrap();
    let patch = server
        .requests()
        .into_iter()
        .find(|r| {
            r.starts_with(
                "PATCH /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/mke3-admins",
            )
        })
        .expect("a PATCH");
    assert!(patch.contains("fieldManager=ferry"), "{patch}");
    let stored = server
        .object(
            "rbac.authorization.k8s.io/v1",
            "clusterrolebindings",
            "",
            "mke3-admins",
        )
        .unwrap();
    assert_eq!(stored["metadata"]["managedFields"][0]["manager"], "ferry");
    assert_eq!(stored["metadata"]["managedFields"][0]["operation"], "Apply");
}

#[tokio::test]
async fn unknown_kinds_and_missing_namespaces_are_invalid() {
    let server = KubeServer::start(&seed()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, TOKEN, dir.path()).await;
    let r = c
        .apply(&json!({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}}))
        .await;
    assert!(
        matches!(&r, Err(ClusterError::Invalid(m)) if m.contains("Gadget")),
        "{r:?}"
    );
    let r = c
        .apply(
            &json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}),
        )
        .await;
    assert!(
        matches!(&r, Err(ClusterError::Invalid(m)) if m.contains("example.com/v1")),
        "{r:?}"
    );
    let r = c
        .get(&ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: None,
            name: "x".into(),
        })
        .await;
    assert!(
        matches!(&r, Err(ClusterError::Invalid(m)) if m.contains("namespaced")),
        "{r:?}"
    );
}

#[tokio::test]
async fn kubeconfig_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    match KubeCluster::from_kubeconfig(&missing, options()).await {
        Err(KubeApiError::Kubeconfig { path, problem }) => {
            assert_eq!(path, missing);
            assert_eq!(problem, "no such file or directory");
        }
        other => panic!("{other:?}"),
    }
    match KubeCluster::from_kubeconfig(dir.path(), options()).await {
        Err(KubeApiError::Kubeconfig { problem, .. }) => {
            assert!(problem.contains("not an MKE 3 client bundle"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "clusters: [").unwrap();
    assert!(matches!(
        KubeCluster::from_kubeconfig(&bad, options()).await,
        Err(KubeApiError::Kubeconfig { .. })
    ));
}

/// An MKE 3 client bundle: kube.yml with certificate paths relative to the bundle directory,
/// against a TLS server whose CA is the bundle's ca.pem.
#[tokio::test]
async fn an_mke3_client_bundle_directory_is_read_with_its_relative_certificates() {
    let pki = ferry_mke3_sim::TestPki::generate().unwrap();
    let server = KubeServer::start_tls(&seed(), pki.server_config().unwrap())
        .await
        .unwrap();
    let bundle = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(bundle.path().join("ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(bundle.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(bundle.path().join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(
        bundle.path().join("kube.yml"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: ca.pem\n    server: {}\n  name: ucp_127.0.0.1:6443_admin\ncontexts:\n- context:\n    cluster: ucp_127.0.0.1:6443_admin\n    user: ucp_127.0.0.1:6443_admin\n  name: ucp_127.0.0.1:6443_admin\ncurrent-context: ucp_127.0.0.1:6443_admin\npreferences: {{}}\nusers:\n- name: ucp_127.0.0.1:6443_admin\n  user:\n    client-certificate: cert.pem\n    client-key: key.pem\n    token: {TOKEN}\n",
            server.url()
        ),
    )
    .unwrap();
    let c = KubeCluster::from_kubeconfig(bundle.path(), options())
        .await
        .unwrap();
    assert!(c.server().starts_with("https://127.0.0.1:"));
    assert_eq!(c.nodes().await.unwrap().len(), 5);

    // The same bundle with another CA is refused.
    std::fs::write(bundle.path().join("ca.pem"), &pki.other_ca_pem).unwrap();
    let c = KubeCluster::from_kubeconfig(bundle.path(), options())
        .await
        .unwrap();
    assert!(
        matches!(c.nodes().await, Err(ClusterError::Unavailable(m)) if m.contains("certificate"))
    );
}

/// The zip of `GET /api/clientbundle`, read in memory: the certificates kube.yml names come
/// from the zip; a wrong CA is refused; a bundle without kube.yml or a file it names, or not a
/// zip at all, is an error that says so.
#[tokio::test]
async fn an_mke3_client_bundle_zip_is_read_in_memory() {
    let pki = ferry_mke3_sim::TestPki::generate().unwrap();
    let server = KubeServer::start_tls(&seed(), pki.server_config().unwrap())
        .await
        .unwrap();
    let zip = ferry_mke3_sim::client_bundle(&server.url(), &pki.ca_pem, Some(TOKEN)).unwrap();
    let c = KubeCluster::from_client_bundle(&zip, options())
        .await
        .unwrap();
    assert!(c.server().starts_with("https://127.0.0.1:"));
    assert_eq!(c.nodes().await.unwrap().len(), 5);

    let other =
        ferry_mke3_sim::client_bundle(&server.url(), &pki.other_ca_pem, Some(TOKEN)).unwrap();
    let c = KubeCluster::from_client_bundle(&other, options())
        .await
        .unwrap();
    assert!(
        matches!(c.nodes().await, Err(ClusterError::Unavailable(m)) if m.contains("certificate"))
    );

    let err = KubeCluster::from_client_bundle(b"not a zip", options())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the MKE 3 client bundle: not a zip archive"),
        "{err}"
    );

    // Take key.pem out: kube.yml names it.
    let without = rezip(&zip, |name| name != "key.pem");
    let err = KubeCluster::from_client_bundle(&without, options())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the MKE 3 client bundle: key.pem is not in the bundle"
    );
    let without = rezip(&zip, |name| name != "kube.yml");
    let err = KubeCluster::from_client_bundle(&without, options())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the MKE 3 client bundle: kube.yml is not in the bundle"
    );
}

/// `zip` with only the entries `keep` accepts.
fn rezip(zip: &[u8], keep: impl Fn(&str) -> bool) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..a.len() {
        let mut f = a.by_index(i).unwrap();
        if !keep(f.name()) {
            continue;
        }
        let mut body = Vec::new();
        f.read_to_end(&mut body).unwrap();
        w.start_file(
            f.name().to_string(),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        w.write_all(&body).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[tokio::test]
async fn lists_follow_continue_tokens() {
    let mut s = seed();
    let template = s.pods[0].clone();
    for i in 0..1_234 {
        let mut p = template.clone();
        p.name = format!("many-{i:04}");
        s.pods.push(p);
    }
    let total = s.pods.len();
    let server = KubeServer::start(&s).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, TOKEN, dir.path()).await;
    let pods = c.pods(None).await.unwrap();
    assert_eq!(pods.len(), total);
    let lists: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /api/v1/pods"))
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert!(lists[1].contains("continue=500"), "{lists:?}");
}
