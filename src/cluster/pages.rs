//! Lists read a page at a time (kubernetes.io "API Concepts", "Retrieving large results sets in
//! chunks": `limit`, then the `continue` token until it is empty), each object reduced by the
//! caller as its page arrives: with hundreds of nodes only one page of whole objects is held,
//! however large the cluster.

use kube::Api;
use kube::api::ListParams;

/// Objects asked for per request.
pub const PAGE: u32 = 100;

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
    let mut params = params.clone().limit(page.max(1));
    let mut out = Vec::new();
    loop {
        let list = api.list(&params).await?;
        out.extend(list.items.into_iter().map(&reduce));
        match list.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}
