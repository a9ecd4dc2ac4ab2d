//! `parley healthcheck`: asks a node's `/readyz` and turns the answer into an exit code, for container
//! healthchecks (the image has no curl). Exit 0 when the node answers 200 within the timeout, 1 when it
//! answers anything else, cannot be reached, or does not answer in time; the reason goes to stderr.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct HealthcheckArgs {
    /// The URL to ask. Default: `/readyz` on `--listen`, over https when `PARLEY_TLS_CERT` is set.
    #[arg(long)]
    pub url: Option<String>,

    /// The node's listen address (the same setting as `parley serve --listen`); an unspecified address
    /// (`0.0.0.0`, `[::]`) is asked on loopback.
    #[arg(long, env = "PARLEY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Whether the node serves TLS (then the default URL is https, and its certificate is not checked:
    /// the check is of readiness, on the node's own address).
    #[arg(long, env = "PARLEY_TLS_CERT", hide = true)]
    pub tls_cert: Option<std::path::PathBuf>,

    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

impl HealthcheckArgs {
    /// The URL asked: `--url`, else `/readyz` on the listen address.
    pub fn target(&self) -> String {
        if let Some(u) = &self.url {
            return u.clone();
        }
        let mut addr = self.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let scheme = if self.tls_cert.is_some() { "https" } else { "http" };
        format!("{scheme}://{addr}/readyz")
    }
}

/// Asks once; the exit code is the verdict.
pub async fn run(args: HealthcheckArgs) -> ExitCode {
    let url = args.target();
    match check(&url, Duration::from_secs(args.timeout_secs.max(1))).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parley healthcheck: {url}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok` when `url` answers 200 within `timeout`.
pub async fn check(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client =
        reqwest::Client::builder().timeout(timeout).danger_accept_invalid_certs(url.starts_with("https://")).build()?;
    let resp = client.get(url).send().await?;
    let status = resp.status();
    if status == reqwest::StatusCode::OK {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    anyhow::bail!("answered {status}: {}", body.chars().take(300).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::HealthcheckArgs;

    #[test]
    fn the_default_target_is_readyz_on_loopback() {
        let args = |listen: &str, tls: bool| HealthcheckArgs {
            url: None,
            listen: listen.parse().unwrap(),
            tls_cert: tls.then(|| "cert.pem".into()),
            timeout_secs: 5,
        };
        assert_eq!(args("0.0.0.0:8080", false).target(), "http://127.0.0.1:8080/readyz");
        assert_eq!(args("[::]:9000", true).target(), "https://[::1]:9000/readyz");
        assert_eq!(args("10.0.0.5:8080", false).target(), "http://10.0.0.5:8080/readyz");
    }
}
