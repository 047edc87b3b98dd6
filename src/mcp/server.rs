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
        let arguments = match confirm::before_spending(
            op,
            arguments,
            &client,
            context,
            self.settings.confirm_spending,
            round,
        )
        .await
        {
            confirm::Verdict::Send(arguments) => arguments,
            confirm::Verdict::Answer(result) => return Ok(result.into()),
            confirm::Verdict::Ask(input) => return Ok(CallToolResponse::InputRequired(input)),
        };
        tracing::info!(tool = op.id, caller = %caller, "tools/call");
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
        let outcome = match timed {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout {
                after: Some(limit),
                source: None,
                idempotency_key: None,
            }),
        };
        Ok(match outcome {
            Ok(response) => {
                let (text, structured) = match response.body {
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
