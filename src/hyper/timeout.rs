//! [`TimeoutLayer`]: a request deadline on numa_rt's timers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::{Request, Response, StatusCode};
use numa_rt_runtime::time::{self, Sleep};

/// A tower layer that answers `408 Request Timeout` (with an empty body)
/// when the inner service takes longer than the deadline, and drops the
/// inner service's future.
///
/// It does what tower-http's timeout layer does, on numa_rt's timers
/// (tower's and tower-http's sleep on tokio's timer, which needs a tokio
/// runtime). The error type stays the inner one, so an axum `Router` takes
/// it with `.layer(...)` directly.
///
/// ```
/// use std::time::Duration;
/// use numa_rt::hyper::TimeoutLayer;
///
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hi" }))
///     .layer(TimeoutLayer::new(Duration::from_secs(10)));
/// # drop(app);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    deadline: Duration,
}

impl TimeoutLayer {
    /// Requests that take longer than `deadline` get a 408.
    pub fn new(deadline: Duration) -> TimeoutLayer {
        TimeoutLayer { deadline }
    }
}

impl<S> tower_layer::Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            deadline: self.deadline,
        }
    }
}

/// The service of [`TimeoutLayer`].
#[derive(Clone, Copy, Debug)]
pub struct Timeout<S> {
    inner: S,
    deadline: Duration,
}

impl<S, ReqB, ResB> tower_service::Service<Request<ReqB>> for Timeout<S>
where
    S: tower_service::Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        TimeoutFuture {
            inner: self.inner.call(req),
            sleep: time::sleep(self.deadline),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Timeout`].
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
    }
}

impl<F, ResB, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    ResB: Default,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            return Poll::Ready(out);
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => {
                let mut res = Response::new(ResB::default());
                *res.status_mut() = StatusCode::REQUEST_TIMEOUT;
                Poll::Ready(Ok(res))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower_layer::Layer;
    use tower_service::Service;

    #[derive(Clone)]
    struct Slow(Duration);

    impl Service<Request<()>> for Slow {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            let d = self.0;
            Box::pin(async move {
                time::sleep(d).await;
                Ok(Response::new("done".to_string()))
            })
        }
    }

    fn call(work: Duration, deadline: Duration) -> Response<String> {
        let rt = numa_rt_runtime::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut svc = TimeoutLayer::new(deadline).layer(Slow(work));
            svc.call(Request::new(())).await.unwrap()
        })
    }

    #[test]
    fn fast_requests_pass_through() {
        let res = call(Duration::from_millis(1), Duration::from_secs(5));
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), "done");
    }

    #[test]
    fn slow_requests_get_408() {
        let res = call(Duration::from_secs(30), Duration::from_millis(20));
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(res.body(), "");
    }
}
