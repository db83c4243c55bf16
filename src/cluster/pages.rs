//! Lists read a page at a time (kubernetes.io "API Concepts", "Retrieving large results sets in
//! chunks": `limit`, then the `continue` token until it is empty), each object reduced by the
//! caller as its page arrives: with hundreds of nodes only one page of whole objects is held,
//! however large the cluster.

use kube::Api;
use kube::api::ListParams;

/// Objects asked for per request.
pub const PAGE: u32 = 100;

/// The most objects one list may hold: ten times the largest cluster Kubernetes supports (5 000
/// nodes; kubernetes.io "Considerations for large clusters"), and our lists are of nodes or of
/// one DaemonSet's pods. A server whose `continue` tokens never end (a bug, or not an API
/// server) would otherwise be paged forever, the list growing all the while.
pub const MAX_LISTED: usize = 50_000;

/// Every object `params` selects, `page` per request, each reduced by `reduce`.
pub async fn list_reduced<K, T>(
    api: &Api<K>,
    params: &ListParams,
    page: u32,
    reduce: impl Fn(K) -> T,
) -> Result<Vec<T>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let page = page.max(1);
    let mut params = params.clone().limit(page);
    let mut out = Vec::new();
    let mut asked = 0usize;
    loop {
        asked = asked.saturating_add(page as usize);
        if asked > MAX_LISTED.saturating_add(page as usize) {
            return Err(kube::Error::Service(
                format!(
                    "the list continued past {MAX_LISTED} objects ({} pages of {page}); no real cluster holds that many, stopped",
                    asked / page as usize - 1
                )
                .into(),
            ));
        }
        let list = api.list(&params).await?;
        out.extend(list.items.into_iter().map(&reduce));
        if out.len() > MAX_LISTED {
            return Err(kube::Error::Service(
                format!("the list holds more than {MAX_LISTED} objects; no real cluster holds that many, stopped").into(),
            ));
        }
        match list.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}
