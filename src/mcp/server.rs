//! The MCP server: `tools/list` from the selection, `tools/call` through
//! [`Client::call_operation`](crate::Client::call_operation), with each
//! caller's own key over HTTP and uploads only from allowed folders.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest, CustomResult,
    GetPromptRequestParams, GetPromptResponse, Implementation, InitializeResult, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ServerCapabilities, Tool,
};
// MCP logging is deprecated by SEP-2577 (rmcp marks its types so); it still
// serves the clients of the protocol versions before it.
#[allow(deprecated)]
use rmcp::model::{LoggingMessageNotificationParam, SetLevelRequestParams};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use super::caller::KeyId;
use super::dynamic;
use super::files::FileSandbox;
use super::limits::{CallGate, CallLimits};
use super::logging::{CALL_LOG, Levels, Sink};
use super::oauth::Access;
use super::tools::{self, Naming, error_result, tool};
use super::toolsets::{Selection, toolset_names};
use super::{confirm, prompts, resources};
use crate::operations::{Operation, flat_keys};
use crate::{Client, ClientBuilder, Error, ResponseBody};

/// Where a call's API key comes from.
#[derive(Clone)]
pub enum Keys {
    /// One client for every call (stdio: the server's own environment).
    Fixed(Client),
    /// Each HTTP request's own key (`Authorization: Bearer` or `X-API-Key`),
    /// used for that request's calls only. The connection pool is shared.
    PerRequest {
        /// The shared HTTP client (same-origin redirects only).
        http: reqwest::Client,
        /// The API's base URL, when not the default.
        base_url: Option<String>,
        /// Hold to the vendored contract strictly.
        strict: bool,
    },
}

/// What a server exposes and how.
#[derive(Clone)]
pub struct Settings {
    /// The exposed operations.
    pub selection: Selection,
    /// How tools are named.
    pub naming: Naming,
    /// A few meta-tools instead of one tool per operation.
    pub dynamic: bool,
    /// Where uploads may come from.
    pub files: FileSandbox,
    /// Each caller's concurrent calls and time limit.
    pub calls: CallLimits,
    /// Whether a paid call is confirmed with the user first.
    pub confirm_spending: super::confirm::ConfirmSpending,
    /// Daily credit limits, when a store keeps them.
    pub budgets: Option<super::budget::Budgets>,
    /// Where each paid or destructive call's audit line goes.
    pub audit: Option<Arc<super::audit::Audit>>,
}

/// The TokPortal MCP server.
#[derive(Clone)]
pub struct TokPortalMcp {
    keys: Keys,
    settings: Arc<Settings>,
    tools: Arc<Vec<Tool>>,
    by_name: Arc<HashMap<String, &'static Operation>>,
    gate: Arc<CallGate>,
    levels: Arc<Levels>,
}

impl TokPortalMcp {
    /// A server with these keys and settings.
    pub fn with_settings(keys: Keys, settings: Settings) -> Self {
        let mut by_name = HashMap::new();
        for op in settings.selection.operations() {
            by_name.insert(settings.naming.name(op), *op);
            // Either name reaches the operation in dynamic mode.
            by_name.insert(op.id.to_owned(), *op);
        }
        let tools = if settings.dynamic {
            dynamic::tools()
        } else {
            settings
                .selection
                .operations()
                .iter()
                .map(|op| tool(op, settings.naming))
                .collect()
        };
        Self {
            keys,
            gate: Arc::new(CallGate::new(settings.calls)),
            levels: Arc::new(Levels::default()),
            settings: Arc::new(settings),
            tools: Arc::new(tools),
            by_name: Arc::new(by_name),
        }
    }

    /// What the caller may do: an OAuth token's scope; an API key, all.
    fn access(&self, context: &RequestContext<RoleServer>) -> Access {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<Access>().copied())
            .unwrap_or_default()
    }

    /// The caller's connection, as the HTTP guard found it (a grant and
    /// its limit, or a key); over stdio, the one key.
    fn connection(&self, context: &RequestContext<RoleServer>) -> super::budget::Connection {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<super::budget::Connection>().cloned())
            .unwrap_or_default()
    }

    /// The budgets, when a daily limit holds for `connection`.
    fn limited(&self, connection: &super::budget::Connection) -> Option<&super::budget::Budgets> {
        self.settings.budgets.as_ref().filter(|b| b.limit(connection).is_some())
    }

    /// Writes the audit line of a paid or destructive call.
    #[allow(clippy::too_many_arguments)]
    fn audit(
        &self,
        op: &Operation,
        connection: &super::budget::Connection,
        caller: KeyId,
        cost: Option<f64>,
        outcome: super::audit::Outcome,
        request_id: Option<&str>,
        idempotency_key: Option<&str>,
    ) {
        let hints = op.hints();
        if hints.spends_credits.is_none() && !hints.destructive {
            return;
        }
        let Some(audit) = &self.settings.audit else { return };
        let key = caller.to_string();
        audit.write(&super::audit::Line {
            time: super::audit::now(),
            grant: connection.grant.as_deref(),
            client_name: connection.client_name.as_deref(),
            client_id: connection.client.as_deref(),
            key: &key,
            tool: op.id,
            cost,
            outcome,
            request_id,
            idempotency_key,
        });
    }

    /// Who is calling: the HTTP caller's key, by its fingerprint; over stdio,
    /// the one caller.
    fn caller(&self, context: &RequestContext<RoleServer>) -> KeyId {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| KeyId::from_headers(&p.headers))
            .unwrap_or_else(|| KeyId::of(""))
    }

    /// The client for this call and who is calling: the fixed client (one
    /// caller), or a client with the HTTP caller's key.
    fn client(&self, context: &RequestContext<RoleServer>) -> Result<(Client, KeyId), Error> {
        match &self.keys {
            Keys::Fixed(client) => Ok((client.clone(), self.caller(context))),
            Keys::PerRequest { http, base_url, strict } => {
                let parts = context.extensions.get::<http::request::Parts>();
                let key = parts
                    .and_then(|p| super::caller::caller_key(&p.headers))
                    .ok_or(Error::MissingApiKey)?;
                let caller = self.caller(context);
                let mut builder = ClientBuilder::new()
                    .http_client(http.clone())
                    .client_identifier(super::IDENTIFIER)
                    .strict_contract(*strict)
                    .api_key(key);
                if let Some(url) = base_url {
                    builder = builder.base_url(url.as_str());
                }
                Ok((builder.build()?, caller))
            }
        }
    }

    /// Calls `op` with `arguments`: uploads checked against the file
    /// sandbox, the caller's concurrent calls counted, the time bounded.
    /// `Err`: refused before anything was sent (too many calls at once).
    pub(crate) async fn call(
        &self,
        op: &'static Operation,
        mut arguments: JsonObject,
        context: &RequestContext<RoleServer>,
        round: confirm::Round<'_>,
    ) -> Result<CallToolResponse, McpError> {
        if self.access(context) == Access::ReadOnly && !op.method.is_read_only() {
            // Refused before anything is sent.
            let value = json!({"error": {"code": "insufficient_scope",
                "message": format!("{} changes something; this token is read-only ({})", op.id, super::oauth::SCOPE_READ_ONLY)}});
            let mut result = CallToolResult::error(vec![ContentBlock::text(value.to_string())]);
            result.structured_content = Some(value);
            return Ok(result.into());
        }
        // The two arguments a price's dry run does not carry (it sets one and
        // drops the other), checked before it is sent: a call they would
        // refuse costs no request.
        if let Some(refused) = preview_blind_spots(op, &arguments) {
            return Ok(error_result(&refused).into());
        }
        if op.is_multipart()
            && let Some(Value::String(path)) = arguments.get(flat_keys::FILE_PATH)
        {
            match self.settings.files.check(path) {
                Ok(resolved) => {
                    arguments.insert(
                        flat_keys::FILE_PATH.into(),
                        Value::String(resolved.display().to_string()),
                    );
                }
                Err(why) => {
                    tracing::warn!(tool = op.id, "upload refused: {why}");
                    return Ok(error_result(&Error::InvalidArgument {
                        operation: Some(op.id.to_owned()),
                        field: Some(flat_keys::FILE_PATH.to_owned()),
                        message: why,
                        others: Vec::new(),
                    })
                    .into());
                }
            }
        }
        let (client, caller) = match self.client(context) {
            Ok(found) => found,
            Err(e) => return Ok(error_result(&e).into()),
        };
        let _running = self.gate.enter(caller)?;
        let connection = self.connection(context);
        let (arguments, confirmed_price) = match confirm::before_spending(
            op,
            arguments,
            &client,
            context,
            self.settings.confirm_spending,
            round,
        )
        .await
        {
            confirm::Verdict::Send { arguments, price } => (arguments, price),
            confirm::Verdict::Answer(result) => {
                let declined = result
                    .structured_content
                    .as_ref()
                    .is_some_and(|v| v["error"]["code"] == "NOT_CONFIRMED");
                if declined {
                    let cost = result
                        .structured_content
                        .as_ref()
                        .and_then(|v| v["preview"]["credits_would_charge"].as_f64());
                    self.audit(
                        op,
                        &connection,
                        caller,
                        cost,
                        super::audit::Outcome::Declined,
                        None,
                        None,
                    );
                }
                return Ok(result.into());
            }
            confirm::Verdict::Ask {
                input,
                arguments,
                price,
            } => {
                // The answer comes in a second round, which sends no dry
                // run: under a limit, this one's price is remembered for it.
                if let (Some(budgets), Some(price)) = (self.limited(&connection), price) {
                    let budget_id = connection.budget_id(&caller.hex());
                    budgets.previews.remember(&budget_id, op.id, &arguments, price);
                }
                return Ok(CallToolResponse::InputRequired(input));
            }
        };
        // A paid call under a daily limit: its price, from its dry run,
        // held in the store before anything paid is sent.
        let previewing = arguments.get(flat_keys::DRY_RUN) == Some(&Value::Bool(true));
        let mut price = None;
        let mut hold = None;
        if op.hints().spends_credits.is_some()
            && !previewing
            && let Some(budgets) = self.limited(&connection)
        {
            // The price the user was asked about in this call, or a
            // preview's of the last minute (the agent's own, or the
            // question's of an earlier round), or a dry run now.
            price = confirmed_price.or_else(|| {
                budgets
                    .previews
                    .take(&connection.budget_id(&caller.hex()), op.id, &arguments)
            });
            if price.is_none() {
                let mut preview_args = arguments.clone();
                preview_args.insert(flat_keys::DRY_RUN.into(), Value::Bool(true));
                preview_args.remove(flat_keys::IDEMPOTENCY_KEY);
                match client.call_operation(op.id, preview_args).await {
                    Ok(preview) => price = preview.dry_run_preview().and_then(|p| p.credits_would_charge),
                    // The dry run's own refusal (a 402, a bad field): nothing was charged.
                    Err(e) => return Ok(error_result(&e).into()),
                }
            }
            match budgets.hold(&connection, &caller.hex(), price).await {
                Ok(held) => hold = held,
                Err(refused) => {
                    match &refused {
                        super::budget::Refused::Unavailable(e) => {
                            super::metrics::store_error();
                            tracing::error!(store = %e.store, error = %e.message, "the daily limit cannot be checked: refusing");
                        }
                        super::budget::Refused::NoPrice => {
                            tracing::warn!(tool = op.id, caller = %caller, "the dry run named no price: refused under the daily limit");
                        }
                        super::budget::Refused::OverLimit { .. } => {
                            tracing::info!(tool = op.id, caller = %caller, "refused by the daily credit limit");
                        }
                    }
                    self.audit(
                        op,
                        &connection,
                        caller,
                        price,
                        super::audit::Outcome::RefusedByLimit,
                        None,
                        None,
                    );
                    let value = refused.body(op.id);
                    let mut result = CallToolResult::error(vec![ContentBlock::text(value.to_string())]);
                    result.structured_content = Some(value);
                    return Ok(result.into());
                }
            }
        }
        tracing::info!(tool = op.id, caller = %caller, "tools/call");
        // A paid call's preview under a limit is remembered by its
        // arguments (below): its price stands in for the dry run the limit
        // would make before the same call, sent next.
        let remember_preview = previewing && op.hints().spends_credits.is_some() && self.limited(&connection).is_some();
        let arguments_seen = if remember_preview {
            arguments.clone()
        } else {
            JsonObject::new()
        };
        let limit = self.gate.limits().timeout;
        // What the SDK logs during the call reaches this client as
        // notifications/message, before the answer.
        let (sink, mut messages) = Sink::new(self.levels.of(caller));
        let call = CALL_LOG.scope(
            sink,
            tokio::time::timeout(limit, client.call_operation(op.id, arguments)),
        );
        tokio::pin!(call);
        let timed = loop {
            tokio::select! {
                biased;
                Some(message) = messages.recv() => notify(context, message).await,
                done = &mut call => break done,
            }
        };
        while let Ok(message) = messages.try_recv() {
            notify(context, message).await;
        }
        let timed_out = timed.is_err();
        let outcome = match timed {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout {
                after: Some(limit),
                source: None,
                idempotency_key: None,
            }),
        };
        let charged = charged(&outcome, price, timed_out);
        if !previewing && op.hints().spends_credits.is_some() {
            super::metrics::credits_spent(op.id, charged.unwrap_or(0.0));
        }
        if let (Some(budgets), Some(hold)) = (&self.settings.budgets, hold) {
            budgets.settle(hold, charged).await;
        }
        if remember_preview
            && let (Some(budgets), Ok(response)) = (&self.settings.budgets, &outcome)
            && let Some(price) = response.dry_run_preview().and_then(|p| p.credits_would_charge)
        {
            budgets
                .previews
                .remember(&connection.budget_id(&caller.hex()), op.id, &arguments_seen, price);
        }
        if !previewing {
            let (request_id, key) = match &outcome {
                Ok(r) => (r.meta.request_id.clone(), r.meta.idempotency_key.clone()),
                Err(e) => (
                    e.api().and_then(|a| a.request_id.clone()),
                    e.idempotency_key().map(str::to_owned),
                ),
            };
            let ended = if outcome.is_ok() {
                super::audit::Outcome::Sent
            } else {
                super::audit::Outcome::Failed
            };
            self.audit(
                op,
                &connection,
                caller,
                charged.or(price),
                ended,
                request_id.as_deref(),
                key.as_deref(),
            );
        }
        let budget_today = match (&self.settings.budgets, op.id) {
            (Some(budgets), "getCurrentUser") => budgets.today(&connection, &caller.hex()).await,
            _ => None,
        };
        Ok(match outcome {
            Ok(response) => {
                let (text, structured) = match response.body {
                    ResponseBody::Json(mut v) if budget_today.is_some() => {
                        // The connection's limit and what is left today, beside the user.
                        if let Some(map) = v.as_object_mut() {
                            map.insert("tokportal_mcp".into(), json!({ "budget": budget_today }));
                        }
                        (v.to_string(), Some(v))
                    }
                    ResponseBody::Json(v) => (v.to_string(), Some(v)),
                    ResponseBody::Text(t) => (t, None),
                    // An empty answer's status is its structured result too.
                    ResponseBody::Empty => {
                        let status = json!({"status": response.meta.status});
                        (status.to_string(), Some(status))
                    }
                };
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = structured.filter(Value::is_object);
                result
            }
            Err(e) => {
                tracing::warn!(tool = op.id, error = %e, "tool call failed");
                error_result(&e)
            }
        }
        .into())
    }

    /// The exposed operation named `name` (either naming).
    pub(crate) fn exposed(&self, name: &str) -> Option<&'static Operation> {
        self.by_name.get(name).copied()
    }
}

/// What an answer says was charged (`credits_charged`, at the top or
/// under `data`).
fn charged_by(body: &ResponseBody) -> Option<f64> {
    let ResponseBody::Json(v) = body else { return None };
    // The contract's top-level field (`CreateBundleResponse`); a bundle's
    // own `data.credits_charged` is what it has cost so far, not this call.
    v.get("credits_charged").and_then(Value::as_f64)
}

/// What `dry_run` and `idempotency_key` would be refused for, checked as
/// the SDK checks them: a dry run made to price or confirm the call sets
/// the one and drops the other, so it would pass where the call would not.
fn preview_blind_spots(op: &Operation, arguments: &JsonObject) -> Option<Error> {
    let invalid = |field: &str, message: String| Error::InvalidArgument {
        operation: Some(op.id.to_owned()),
        field: Some(field.to_owned()),
        message,
        others: Vec::new(),
    };
    match arguments.get(flat_keys::DRY_RUN) {
        None | Some(Value::Bool(_)) => {}
        Some(_) if op.method.is_read_only() => {}
        Some(_) => return Some(invalid(flat_keys::DRY_RUN, "must be a boolean".into())),
    }
    match arguments.get(flat_keys::IDEMPOTENCY_KEY) {
        None => None,
        Some(Value::String(key)) => crate::idempotency::validate_key(key.as_bytes())
            .err()
            .map(|why| invalid(flat_keys::IDEMPOTENCY_KEY, why)),
        Some(_) => Some(invalid(flat_keys::IDEMPOTENCY_KEY, "must be a string".into())),
    }
}

/// What a paid call charged, as its daily limit counts it:
/// - an answer: its `credits_charged`, else the price it was held at; an
///   answer replayed for its idempotency key charged nothing again;
/// - an error answer below 500 (a refusal): nothing;
/// - no answer, a 5xx, or this server's own timeout (the request may have
///   reached TokPortal and been done there): unknown (`None`), and the
///   whole hold is kept: a connection may spend less than it could, never
///   more;
/// - an error before anything was sent: nothing.
fn charged(outcome: &Result<crate::OperationResponse, Error>, price: Option<f64>, timed_out: bool) -> Option<f64> {
    match outcome {
        Ok(response) if response.meta.idempotent_replayed => Some(0.0),
        Ok(response) => Some(charged_by(&response.body).or(price).unwrap_or(0.0)),
        Err(_) if timed_out => None,
        Err(Error::Api(api)) if api.status >= 500 => None,
        Err(Error::Api(_)) => Some(0.0),
        Err(e) if e.idempotency_key().is_none() && e.status().is_none() => Some(0.0),
        Err(_) => None,
    }
}

/// Sends one log message to the calling client; a client that has gone
/// away is not an error of the call.
#[allow(deprecated)]
async fn notify(context: &RequestContext<RoleServer>, message: LoggingMessageNotificationParam) {
    let sent = context.peer.notify_logging_message(message).await;
    if let Err(e) = sent {
        tracing::debug!(error = %e, "a log message could not reach its client");
    }
}

/// What the server tells an agent when it connects.
fn instructions(settings: &Settings) -> String {
    let mut text = String::from(
        "TokPortal: geo-targeted TikTok/Instagram/YouTube accounts, video bundles, uploads, analytics, \
         comment tasks and webhooks. ",
    );
    if settings.dynamic {
        text.push_str(
            "Find operations with search_operations (by words or toolset), read one with describe_operation, \
             run it with call_operation. ",
        );
    }
    text.push_str(&format!(
        "Toolsets: {}. Credits are debited at once and never refunded: before a paid action \
         (its description says so), confirm with the user or preview it with dry_run: true, which charges \
         nothing and changes nothing. Pass an idempotency_key on mutating calls you may retry: a retry with \
         the same key returns the first answer. Lists take page and per_page (at most 100); stop when a page \
         is empty or pagination.total_pages is reached.",
        toolset_names().join(", ")
    ));
    if settings.files.dirs().is_empty() {
        text.push_str(" Uploads from local files are off on this server.");
    } else {
        text.push_str(" Uploads (file_path) are allowed from the server's allowed folders only.");
    }
    text
}

impl ServerHandler for TokPortalMcp {
    #[allow(deprecated)] // the logging capability (SEP-2577)
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_logging()
                .enable_completions()
                .build(),
        )
        .with_server_info(Implementation::new("tokportal-mcp", env!("CARGO_PKG_VERSION")))
        .with_instructions(instructions(&self.settings))
    }

    /// `logging/setLevel`: from now on this caller's tool calls send their
    /// messages from `level` up.
    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.levels.set(self.caller(&context), request.level);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        prompts::get(&request.name, request.arguments.as_ref(), self.settings.naming)
            .map(GetPromptResponse::Complete)
            .map_err(|e| McpError::invalid_params(e.to_string(), None))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri;
        let read = resources::resolve(&uri).map_err(|why| McpError::resource_not_found(why, None))?;
        let (text, mime) = match read {
            resources::Read::Static(text, mime) => (text, mime),
            resources::Read::Call { operation, id } => {
                let (client, caller) = self
                    .client(&context)
                    .map_err(|e| McpError::invalid_request(e.to_string(), None))?;
                let _running = self.gate.enter(caller)?;
                let mut arguments = JsonObject::new();
                arguments.insert("id".into(), Value::String(id));
                let limit = self.gate.limits().timeout;
                let answer = tokio::time::timeout(limit, client.call_operation(operation, arguments))
                    .await
                    .map_err(|_| McpError::internal_error(format!("{operation} took over {limit:?}"), None))?;
                match answer {
                    Ok(response) => match response.body {
                        ResponseBody::Json(v) => (v.to_string(), "application/json"),
                        ResponseBody::Text(t) => (t, "text/plain"),
                        ResponseBody::Empty => (String::new(), "text/plain"),
                    },
                    Err(Error::Api(api)) if api.status == 404 => {
                        return Err(McpError::resource_not_found(format!("{uri}: {}", api.message), None));
                    }
                    Err(e) => {
                        let detail = tools::error_result(&e).structured_content;
                        return Err(McpError::internal_error(format!("{operation}: {e}"), detail));
                    }
                }
            }
        };
        Ok(ReadResourceResponse::Complete(ReadResourceResult::new(vec![
            resources::contents(&uri, text, mime),
        ])))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = match self.access(&_context) {
            Access::Full => self.tools.as_ref().clone(),
            // A read-only token lists only what changes nothing.
            Access::ReadOnly => self
                .tools
                .iter()
                .filter(|t| {
                    self.by_name
                        .get(t.name.as_ref())
                        .is_none_or(|op| op.method.is_read_only())
                })
                .cloned()
                .collect(),
        };
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // Timed, with its outcome, for --metrics (nothing else changes).
        let listed = self.tools.iter().any(|t| t.name == request.name);
        let label = super::metrics::tool_label(&request.name, request.arguments.as_ref(), listed, |name| {
            self.exposed(name)
        });
        super::metrics::timed_call(label, async move {
            let round = confirm::Round {
                responses: request.input_responses.as_ref(),
                state: request.request_state.as_deref(),
            };
            let arguments = request.arguments.clone().unwrap_or_default();
            if self.settings.dynamic {
                let step = dynamic::step(
                    &self.settings.selection,
                    self.settings.naming,
                    |name| self.exposed(name),
                    &request.name,
                    arguments,
                )?;
                return Ok(match step {
                    dynamic::Step::Answer(result) => result,
                    dynamic::Step::Call(op, arguments) => return self.call(op, arguments, &context, round).await,
                }
                .into());
            }
            // Only the listed tools can be called.
            let Some(op) = self
                .exposed(&request.name)
                .filter(|op| self.settings.naming.name(op) == request.name)
            else {
                return Err(McpError::invalid_params(
                    format!("unknown tool `{}`", request.name),
                    None,
                ));
            };
            self.call(op, arguments, &context, round).await
        })
        .await
    }

    /// `completion/complete`: values for a prompt's argument or a resource
    /// template's variable (`completion.rs`), the caller's own lists read
    /// with the caller's key.
    async fn complete(
        &self,
        request: rmcp::model::CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CompleteResult, McpError> {
        let Some(wanted) = super::completion::wanted(&request.r#ref, &request.argument.name)? else {
            return Ok(rmcp::model::CompleteResult::default());
        };
        let (client, caller) = self
            .client(&context)
            .map_err(|e| McpError::invalid_request(e.to_string(), None))?;
        let _running = self.gate.enter(caller)?;
        let limit = self.gate.limits().timeout;
        let values = super::completion::complete(wanted, &request.argument.value, &client);
        let completion = tokio::time::timeout(limit, values)
            .await
            .map_err(|_| McpError::internal_error(format!("completion took over {limit:?}"), None))??;
        Ok(rmcp::model::CompleteResult::new(completion))
    }

    /// rmcp hands over a request of a known method whose params do not parse
    /// (a `tools/call` without `name`, `arguments` as an array) as a custom
    /// request; answered here as what it is, invalid params (-32602), rather
    /// than rmcp's default "method not found" (-32601).
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        let known = [
            "tools/call",
            "tools/list",
            "initialize",
            "ping",
            "resources/list",
            "prompts/list",
        ];
        if known.contains(&request.method.as_str()) {
            let hint = if request.method == "tools/call" {
                ": `name` must be a string and `arguments`, when given, an object"
            } else {
                ""
            };
            return Err(McpError::invalid_params(
                format!("malformed params for {}{hint}", request.method),
                None,
            ));
        }
        Err(McpError::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            request.method,
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: Value, replayed: bool) -> Result<crate::OperationResponse, Error> {
        Ok(crate::OperationResponse {
            meta: crate::ResponseMeta {
                idempotent_replayed: replayed,
                ..crate::ResponseMeta::default()
            },
            body: ResponseBody::Json(body),
        })
    }

    fn api(status: u16) -> Result<crate::OperationResponse, Error> {
        let status = http::StatusCode::from_u16(status).unwrap();
        Err(Error::Api(Box::new(crate::ApiError::from_parts(
            status,
            &http::HeaderMap::new(),
            b"{}",
        ))))
    }

    /// `dry_run` that is not a boolean, or an idempotency key the SDK would
    /// refuse, is refused before any dry run is sent.
    #[test]
    fn what_a_dry_run_would_not_catch_is_caught_first() {
        let op = crate::operations::find("createBundle").unwrap();
        let args = |v: Value| v.as_object().cloned().unwrap();
        for bad in [
            json!({"dry_run": "true"}),
            json!({"dry_run": 1}),
            json!({"dry_run": null}),
            json!({"idempotency_key": "a\nb"}),
            json!({"idempotency_key": ""}),
            json!({"idempotency_key": 5}),
        ] {
            assert!(preview_blind_spots(op, &args(bad.clone())).is_some(), "{bad}");
        }
        for good in [json!({}), json!({"dry_run": false, "idempotency_key": "k-1"})] {
            assert!(preview_blind_spots(op, &args(good.clone())).is_none(), "{good}");
        }
    }

    /// What a daily limit counts a paid call as having charged.
    #[test]
    fn what_a_paid_call_charged() {
        // The contract's top-level figure; the price when it names none;
        // a bundle's own running total is not this call's charge.
        assert_eq!(
            charged(&answer(json!({"credits_charged": 12.0}), false), Some(10.0), false),
            Some(12.0)
        );
        assert_eq!(
            charged(
                &answer(json!({"data": {"credits_charged": 27.0}}), false),
                Some(0.0),
                false
            ),
            Some(0.0)
        );
        assert_eq!(
            charged(&answer(json!({"data": {}}), false), Some(10.0), false),
            Some(10.0)
        );
        // Replayed for its idempotency key: charged nothing again.
        assert_eq!(
            charged(&answer(json!({"credits_charged": 10.0}), true), Some(10.0), false),
            Some(0.0)
        );
        // A refusal charged nothing; a 5xx or this server's timeout may have: unknown.
        for status in [400, 402, 404, 409, 429] {
            assert_eq!(charged(&api(status), Some(10.0), false), Some(0.0), "{status}");
        }
        for status in [500, 502, 503, 504] {
            assert_eq!(charged(&api(status), Some(10.0), false), None, "{status}");
        }
        let timeout = Err(Error::Timeout {
            after: None,
            source: None,
            idempotency_key: None,
        });
        assert_eq!(charged(&timeout, Some(10.0), true), None, "our own timeout");
    }
}
