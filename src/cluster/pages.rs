//! Lists read a page at a time (kubernetes.io "API Concepts", "Retrieving large results sets in
//! chunks": `limit`, then the `continue` token until it is empty), each object reduced by the
//! caller as its page arrives: with hundreds of nodes only one page of whole objects is held,
//! however large the cluster.

use kube::Api;
use kube::api::ListParams;

/// Objects asked for per request.
pub const PAGE: u32 = 100;

/// At most this many objects are read from one list: ten times Kubernetes' largest tested
/// cluster (5,000 nodes; kubernetes.io "Considerations for large clusters"). An API server that
/// keeps handing out `continue` tokens past it is not followed further.
pub const MAX_OBJECTS: usize = 50_000;

/// Every object `params` selects, `page` per request, each reduced by `reduce`; an error once
/// more than [`MAX_OBJECTS`] were read or more requests made than that many objects need.
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
    // Pages may come short (a selector may filter after the limit), so requests are bounded on
    // their own too: twice what MAX_OBJECTS needs in full pages.
    let max_requests = 2 * MAX_OBJECTS.div_ceil(page as usize) + 1;
    for _ in 0..max_requests {
        let list = api.list(&params).await?;
        if out.len() + list.items.len() > MAX_OBJECTS {
            break;
        }
        out.extend(list.items.into_iter().map(&reduce));
        match list.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
    let message = format!(
        "the list {} did not end within {MAX_OBJECTS} objects ({} read); no cluster has that many, so the answer was not followed further",
        api.resource_url(),
        out.len()
    );
    Err(kube::Error::Api(
        kube::core::Status::failure(&message, "TooManyObjects").boxed(),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use k8s_openapi::api::core::v1::Pod;

    use super::*;

    /// A client whose API server answers every list with `items` pods and a `continue` token
    /// that never ends; counts the requests.
    fn endless(items: usize) -> (Api<Pod>, Arc<AtomicUsize>) {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let service = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let pods: Vec<String> = (0..items)
                .map(|i| format!(r#"{{"metadata":{{"name":"p{i}"}}}}"#))
                .collect();
            let body = format!(
                r#"{{"apiVersion":"v1","kind":"PodList","metadata":{{"continue":"again"}},"items":[{}]}}"#,
                pods.join(",")
            );
            async move {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::from(
                    body,
                )))
            }
        });
        let client = kube::Client::new(service, "default");
        (Api::namespaced(client, "default"), requests)
    }

    #[tokio::test]
    async fn a_list_that_never_ends_stops_at_the_object_bound() {
        let (api, requests) = endless(PAGE as usize);
        let err = list_reduced(&api, &ListParams::default(), PAGE, |p| p.metadata.name)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("did not end within 50000 objects (50000 read)"),
            "{err}"
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            MAX_OBJECTS / PAGE as usize + 1
        );
    }

    #[tokio::test]
    async fn empty_pages_that_never_end_stop_at_the_request_bound() {
        let (api, requests) = endless(0);
        let err = list_reduced(&api, &ListParams::default(), PAGE, |p| p.metadata.name)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("(0 read)"), "{err}");
        assert_eq!(
            requests.load(Ordering::SeqCst),
            2 * MAX_OBJECTS / PAGE as usize + 1
        );
    }
}
