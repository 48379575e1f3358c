//! The REST API at `/api/v1` and the streaming endpoints, both generated from the operation
//! registry: every operation with an HTTP route is mounted here, its input read from the path,
//! the query string and the body (JSON or form), and run through the same authorization and
//! handler as the pages' server functions. Authenticated by API tokens (`Authorization: Bearer
//! plk_…`) or a browser session. The OpenAPI document (`/api/v1/openapi.json`) is generated from
//! the same declarations.

use crate::domain::idempotency;
use crate::operations::registry::{registry, Entry, Run};
use crate::operations::ErrorResponse;
use crate::state::SharedState;
use axum::body::Bytes;
use axum::extract::{RawPathParams, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodFilter, MethodRouter};
use axum::{Extension, Json, Router};
use potluck_app::error::ApiError;
use potluck_app::ops::{Need, OpInfo};
use potluck_app::ports::{Caller, Principal};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use utoipa::OpenApi;

/// `/api/v1`: the OpenAPI document and every value operation.
pub fn routes() -> Router<SharedState> {
    mount(Router::new().route("/openapi.json", get(openapi)), false)
}

/// The streaming endpoints, at their own paths (pages link to them).
pub fn raw_routes() -> Router<SharedState> {
    mount(Router::new(), true)
}

fn mount(router: Router<SharedState>, raw: bool) -> Router<SharedState> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<SharedState>> = BTreeMap::new();
    for entry in registry().entries().filter(|e| e.info.raw == raw) {
        let Some(http) = entry.info.http else { continue };
        let name = entry.info.name;
        let filter = match http.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            other => panic!("operation {name}: unsupported method {other}"),
        };
        let handler = move |State(st): State<SharedState>,
                            Extension(caller): Extension<Caller>,
                            params: RawPathParams,
                            RawQuery(query): RawQuery,
                            headers: HeaderMap,
                            body: Bytes| async move {
            let params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            handle(name, st, caller, params, query, headers, body).await
        };
        let route = by_path.remove(http.path).unwrap_or_default();
        by_path.insert(http.path, route.on(filter, handler));
    }
    by_path.into_iter().fold(router, |r, (path, m)| r.route(path, m))
}

fn is_id(key: &str) -> bool {
    key == "id" || key.ends_with("_id")
}

/// The operation's input from the request: path parameters, then the body (JSON, or a form as
/// server functions send it), then the query string.
fn input(
    entry: &Entry,
    params: &[(String, String)],
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    multipart: Option<Map<String, Value>>,
) -> Result<crate::operations::registry::Boxed, ApiError> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let bad = |e: String| ApiError::invalid("body", e);
    if json_body || multipart.is_some() {
        let mut object = if let Some(fields) = multipart {
            fields
        } else if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body).map_err(|e| bad(format!("not JSON: {e}")))? {
                Value::Object(m) => m,
                _ => return Err(bad("give a JSON object".into())),
            }
        };
        for (k, v) in params {
            let value = match v.parse::<i64>() {
                Ok(n) if is_id(k) => json!(n),
                _ => json!(v),
            };
            object.insert(k.clone(), value);
        }
        if let Some(q) = query {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                object.entry(k.into_owned()).or_insert_with(|| json!(v.into_owned()));
            }
        }
        return (entry.from_json)(Value::Object(object)).map_err(bad);
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    let mut text = form.finish();
    for part in [query.unwrap_or_default(), std::str::from_utf8(body).map_err(|_| bad("not UTF-8".into()))?] {
        if !part.trim().is_empty() {
            if !text.is_empty() {
                text.push('&');
            }
            text.push_str(part.trim());
        }
    }
    (entry.from_form)(&text).map_err(bad)
}

/// Most fields a form may send, and the most a text field may hold.
const FORM_FIELDS: usize = 64;
const FORM_TEXT: usize = 64 << 10;
/// The most a file field may hold (an abra tree, `tree::MAX_ARCHIVE`).
const FORM_FILE: usize = 1 << 20;

/// A `multipart/form-data` body (an HTML form with a file) as the JSON object of its fields: a
/// text field as its text, a file as base64 of its bytes. `None` for any other body.
async fn multipart_fields(headers: &HeaderMap, body: Bytes) -> Result<Option<Map<String, Value>>, ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    if !ct.starts_with("multipart/form-data") {
        return Ok(None);
    }
    use base64::Engine as _;
    let bad = |e: String| ApiError::invalid("body", e);
    let boundary = multer::parse_boundary(ct).map_err(|e| bad(format!("not a form: {e}")))?;
    let limits = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().per_field(FORM_FILE as u64).whole_stream(2 * FORM_FILE as u64));
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut form = multer::Multipart::with_constraints(stream, boundary, limits);
    let mut fields = Map::new();
    while let Some(field) = form.next_field().await.map_err(|e| bad(format!("not a form: {e}")))? {
        if fields.len() >= FORM_FIELDS {
            return Err(bad(format!("more than {FORM_FIELDS} fields")));
        }
        let name = field.name().unwrap_or_default().to_string();
        let file = field.file_name().is_some();
        let name_for_error = name.clone();
        let bytes = field.bytes().await.map_err(|e| ApiError::invalid(name_for_error, e.to_string()))?;
        let value = if file {
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        } else {
            if bytes.len() > FORM_TEXT {
                return Err(ApiError::invalid(name, format!("longer than {} KiB", FORM_TEXT >> 10)));
            }
            String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::invalid(name.clone(), "not UTF-8"))?
        };
        fields.insert(name, Value::String(value));
    }
    Ok(Some(fields))
}

async fn handle(
    name: &'static str,
    st: SharedState,
    caller: Caller,
    params: Vec<(String, String)>,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(entry) = registry().get(name) else {
        return ErrorResponse(ApiError::Internal { request_id: caller.request_id.clone() }).into_response();
    };
    let multipart = match multipart_fields(&headers, body.clone()).await {
        Ok(m) => m,
        Err(e) => return ErrorResponse(e).into_response(),
    };
    let input = match input(entry, &params, query.as_deref(), &headers, &body, multipart) {
        Ok(i) => i,
        Err(e) => return ErrorResponse(e).into_response(),
    };
    let run = match &entry.run {
        Run::Raw(run) => return run(st, caller, input).await,
        Run::Value(run) => run,
    };
    // A retried POST with the same Idempotency-Key gets the first answer (see `idempotency`).
    let keyed = match (headers.get(IDEMPOTENCY_KEY), entry.info.http, caller_key(&caller)) {
        (Some(key), Some(http), Some(who)) if http.method == "POST" => {
            let key = match key.to_str().ok().filter(|k| idempotency::valid(k)) {
                Some(k) => k.to_string(),
                None => {
                    return ErrorResponse(ApiError::invalid(
                        "Idempotency-Key",
                        format!("give 1 to {} printable ASCII characters", idempotency::MAX_KEY),
                    ))
                    .into_response()
                }
            };
            let params_text: String = params.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            let request = idempotency::fingerprint(
                name,
                &[params_text.as_bytes(), query.as_deref().unwrap_or_default().as_bytes(), &body],
            );
            match idempotency::begin(&st, &who, &key, &request).await {
                Ok(idempotency::Seen::First) => Some((who, key)),
                Ok(idempotency::Seen::Answered(status, body)) => return replay(status, body),
                Ok(idempotency::Seen::Withheld) => {
                    return ErrorResponse(ApiError::conflict(
                        "a request with this Idempotency-Key was answered already; its answer is not kept \
                         (it held values shown once, or was too large): look the result up instead",
                    ))
                    .into_response()
                }
                Ok(idempotency::Seen::Running) => {
                    return ErrorResponse(ApiError::conflict(
                        "a request with this Idempotency-Key is still running: ask again once it answered",
                    ))
                    .into_response()
                }
                Ok(idempotency::Seen::Mismatch) => {
                    return ErrorResponse(ApiError::invalid(
                        "Idempotency-Key",
                        "this key came first with another request: use a new key for a new request",
                    ))
                    .into_response()
                }
                Err(e) => return ErrorResponse(e.into_api(&caller.request_id)).into_response(),
            }
        }
        _ => None,
    };
    let request_id = caller.request_id.clone();
    let run = run.clone();
    let to_json = entry.to_json;
    let secret = answers_secrets(name);
    // Run to the end even when the client goes away (the lost answer a key is for): the
    // operation and the keeping of its answer are a task of their own.
    let task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            let (json, response) = match run(st.clone(), caller, input).await {
                Ok(out) => match to_json(out) {
                    Value::Null => (String::new(), StatusCode::NO_CONTENT.into_response()),
                    v => {
                        let json = v.to_string();
                        (json.clone(), answer(StatusCode::OK, json))
                    }
                },
                Err(e) => (serde_json::to_string(&e).unwrap_or_default(), ErrorResponse(e).into_response()),
            };
            if let Some((who, key)) = keyed {
                if let Err(e) = idempotency::finish(&st, &who, &key, response.status().as_u16(), &json, secret).await {
                    tracing::warn!(request.id = %request_id, error = %e, "the idempotency key's answer was not kept");
                }
            }
            response
        },
        tracing::Span::current(),
    ));
    task.await.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Whether an operation's answer holds values shown once (`OneTimeSecret`: a token, a secret,
/// a password), which an idempotency key must not keep. Read from its answer's schema.
fn answers_secrets(name: &str) -> bool {
    static SECRET: std::sync::OnceLock<BTreeMap<&'static str, bool>> = std::sync::OnceLock::new();
    let map = SECRET.get_or_init(|| {
        registry()
            .entries()
            .map(|e| {
                let s = (e.info.schemas)();
                let named = s.components.iter().any(|(n, _)| n == "OneTimeSecret");
                let inline = s
                    .response
                    .as_ref()
                    .and_then(|r| serde_json::to_string(r).ok())
                    .is_some_and(|t| t.contains("OneTimeSecret"));
                (e.info.name, named || inline)
            })
            .collect()
    });
    map.get(name).copied().unwrap_or(true)
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Whose keys a request's are: a person's, or one token's.
fn caller_key(caller: &Caller) -> Option<String> {
    match &caller.principal {
        Principal::Anonymous => None,
        Principal::User(u) => Some(format!("user:{}", u.user_id)),
        Principal::Token(t) => Some(format!("token:{}", t.token_id)),
    }
}

fn answer(status: StatusCode, json: String) -> Response {
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// The kept answer of an earlier request with the same key, marked as such.
fn replay(status: u16, json: String) -> Response {
    let mut r = answer(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), json);
    r.headers_mut().insert("idempotent-replayed", header::HeaderValue::from_static("true"));
    r
}

#[derive(OpenApi)]
#[openapi(components(schemas(ApiError)))]
struct Components;

fn describe(info: &OpInfo) -> String {
    let who = match (info.scope, info.need) {
        ("public", _) => "anyone".to_string(),
        ("federation", _) | (_, Need::FederationAdmin) => "federation admins".to_string(),
        (_, Need::Permission(p)) => format!(
            "the `{}` permission in the collective",
            serde_json::to_value(p).unwrap_or_default().as_str().unwrap_or_default()
        ),
        (_, Need::SeeRecipe) => "whoever may see the recipe".to_string(),
        (_, Need::MaintainRecipe) => "the recipe's maintainers".to_string(),
        (_, Need::ReviewRelease) => "the recipe's maintainers (reviewers)".to_string(),
        (_, Need::Nothing) => "any signed-in principal".to_string(),
        (_, Need::Anywhere(p)) => format!(
            "whoever holds the `{}` permission in some collective",
            serde_json::to_value(p).unwrap_or_default().as_str().unwrap_or_default()
        ),
    };
    let mut text = format!("Allowed to {who}.");
    if info.session_only {
        text.push_str(" Browser sessions only: API tokens are refused.");
    }
    if !info.audit.is_empty() {
        text.push_str(&format!(
            " Audited as {}.",
            info.audit.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(" / ")
        ));
    }
    text
}

/// The OpenAPI document, generated from the operation registry.
pub fn document() -> Value {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut components: BTreeMap<String, Value> = BTreeMap::new();
    for entry in registry().entries() {
        let info = &entry.info;
        let Some(http) = info.http else { continue };
        let path = if info.raw { http.path.to_string() } else { format!("/api/v1{}", http.path) };
        let in_path: Vec<&str> =
            http.path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        let parameters: Vec<Value> = in_path
            .iter()
            .map(|p| {
                json!({ "name": p, "in": "path", "required": true,
                        "schema": { "type": if is_id(p) { "integer" } else { "string" } } })
            })
            .collect();
        let schemas = (info.schemas)();
        for (name, schema) in &schemas.components {
            components.entry(name.clone()).or_insert_with(|| serde_json::to_value(schema).unwrap_or_default());
        }
        let request = schemas.request.as_ref().and_then(|r| serde_json::to_value(r).ok());
        let response = schemas.response.as_ref().and_then(|r| serde_json::to_value(r).ok());
        let error = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ApiError" } } } });
        let mut op = json!({
            "operationId": info.name,
            "summary": info.name.replace('_', " "),
            "description": describe(info),
            "parameters": parameters,
            "responses": {
                "200": { "description": "the result (204 when there is none)" },
                "401": error("not signed in"),
                "403": error("signed in, not allowed"),
                "404": error("not found (or another collective's)"),
                "409": error("conflicts with the current state"),
                "422": error("invalid input"),
            },
        });
        if let Some(ok) = &response {
            op["responses"]["200"]["content"] = json!({ "application/json": { "schema": ok } });
        }
        // A GET's or DELETE's other inputs are its query.
        if matches!(http.method, "GET" | "DELETE") {
            if let Some(props) = request.as_ref().and_then(|r| r["properties"].as_object()) {
                if let Some(list) = op["parameters"].as_array_mut() {
                    for (name, schema) in props.iter().filter(|(n, _)| !in_path.contains(&n.as_str())) {
                        list.push(json!({ "name": name, "in": "query", "required": false, "schema": schema }));
                    }
                }
            }
        }
        if http.method == "POST" && !info.raw {
            if let Some(list) = op["parameters"].as_array_mut() {
                list.push(json!({
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "schema": { "type": "string", "maxLength": idempotency::MAX_KEY },
                    "description": "A retry with the same key (yours, for a day) gets the first answer instead of running again \
                                    (marked `Idempotent-Replayed: true`); the same key with another request is refused (422), \
                                    and while the first still runs the retry gets 409.",
                }));
            }
        }
        if http.method != "GET" && http.method != "DELETE" {
            // Path parameters are not in the body.
            let mut body = request.clone().unwrap_or_else(|| json!({ "type": "object" }));
            if let Some(props) = body["properties"].as_object_mut() {
                for p in &in_path {
                    props.remove(*p);
                }
            }
            op["requestBody"] = json!({ "content": {
                "application/json": { "schema": body.clone() },
                "application/x-www-form-urlencoded": { "schema": body },
            } });
        }
        paths.entry(path).or_default().insert(http.method.to_ascii_lowercase(), op);
    }
    let mut doc = serde_json::to_value(Components::openapi()).unwrap_or_default();
    doc["info"] = json!({
        "title": "Potluck API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Automation API of a Potluck federation. Authenticate with an API token: `Authorization: Bearer plk_…`.",
    });
    doc["paths"] = json!(paths);
    if let Some(named) = doc["components"]["schemas"].as_object_mut() {
        for (name, schema) in components {
            named.entry(name).or_insert(schema);
        }
    }
    doc["components"]["securitySchemes"] = json!({ "bearer": { "type": "http", "scheme": "bearer" } });
    doc["security"] = json!([{ "bearer": [] }]);
    doc
}

async fn openapi() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_routed_operation_is_documented() {
        let doc = document();
        for e in registry().entries() {
            if let Some(h) = e.info.http {
                let path = if e.info.raw { h.path.to_string() } else { format!("/api/v1{}", h.path) };
                assert!(
                    doc["paths"][&path][h.method.to_ascii_lowercase()].is_object(),
                    "{} {path} is missing from the OpenAPI document",
                    h.method
                );
            }
        }
        assert_eq!(doc["info"]["title"], "Potluck API");
    }

    /// Every `$ref` of a value, recursively.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn requests_and_answers_have_schemas_whose_references_resolve() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}: not a component"));
            assert!(doc["components"]["schemas"][name].is_object(), "{r} does not resolve");
        }
        let create = &doc["paths"]["/api/v1/collectives/{slug}/apps"]["post"];
        let body = &create["requestBody"]["content"]["application/json"]["schema"]["properties"];
        for field in ["server", "recipe", "domain", "version"] {
            assert!(body[field].is_object(), "create_app's body names {field}: {body}");
        }
        assert!(body.get("slug").is_none(), "the path's parameters are not in the body");
        let answer = &create["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(answer["properties"]["domain"].is_object(), "create_app answers an app: {answer}");
        let list = &doc["paths"]["/api/v1/collectives/{slug}/apps"]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        assert_eq!(list["type"], "array", "{list}");
    }

    #[test]
    fn answers_with_values_shown_once_are_known() {
        for op in ["generate_secrets", "create_api_token", "create_invitation", "rotate_secret"] {
            assert!(answers_secrets(op), "{op} answers a OneTimeSecret");
        }
        for op in ["list_apps", "create_app", "start_job", "whoami"] {
            assert!(!answers_secrets(op), "{op} answers no secret");
        }
    }

    #[test]
    fn ids_in_paths_are_numbers() {
        assert!(is_id("id") && is_id("user_id") && !is_id("slug") && !is_id("idle"));
    }
}
