//! `/api/v1/tools/attachments`: files linked to records. The API never carries the bytes
//! on AWS: a new attachment answers a presigned upload (S3 checks the signed size and
//! content type), `.../complete` re-checks what arrived, and a read answers a presigned
//! download. Locally the same URLs point at the local server's `/api/v1/files/{key}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::caller::{need, Authorized};
use super::extract::{JsonBody, Params};
use super::problem::Problem;
use super::tools::tool_filter;
use super::{AppState, RouteTable};
use crate::adapters::local_files::{accept_upload, LocalFiles};
use crate::app::error::{AppError, AppResult};
use crate::app::page::Listed;
use crate::app::tools::new_common;
use crate::domain::invalid::Invalid;
use crate::domain::tools::{check_attachment, Attachment, AttachmentStatus, Subject};
use crate::ports::blobs::{Blobs, Upload};

pub fn routes<R: RouteTable>() -> R {
    R::empty()
        .with(routes!(list_attachments, create_attachment))
        .with(routes!(get_attachment, delete_attachment))
        .with(routes!(complete_attachment))
}

/// How long presigned URLs work, in seconds.
pub const URL_TTL: u64 = 15 * 60;

fn blobs(state: &AppState) -> AppResult<Arc<dyn Blobs>> {
    state.services.blobs().cloned().ok_or_else(|| AppError::Unavailable("no file storage is configured".to_string()))
}

fn storage(e: crate::ports::blobs::BlobError) -> AppError {
    AppError::Unavailable(e.to_string())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAttachment {
    pub filename: String,
    /// One of the allowed types (PDF, images, text, office documents, zip).
    pub content_type: String,
    /// Bytes, at most 25 MiB.
    pub size: u64,
    pub subject: Option<Subject>,
}

/// A new attachment and where to upload it (send exactly those headers).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttachmentUpload {
    pub attachment: Attachment,
    pub upload: Upload,
}

/// An attachment; `download` (a URL valid 15 minutes) once it is available.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttachmentView {
    #[serde(flatten)]
    pub attachment: Attachment,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<String>,
}

/// Attachments, newest first.
#[utoipa::path(get, path = "/api/v1/tools/attachments", tag = "tools", security(("bearer" = [])),
    params(("system_id" = Option<String>, Query), ("entity" = Option<String>, Query), ("record_id" = Option<String>, Query),
           ("owner" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Listed<Attachment>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_attachments(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    params: Params,
) -> AppResult<Json<Listed<Attachment>>> {
    let filter = tool_filter(&params);
    Ok(Json(state.services.tools().list::<Attachment>(auth.tenant()?, &filter, &params.page()?, |_| true).await?))
}

/// Announce an attachment: the answer says where to upload it, within 15 minutes. It is
/// `pending` until `POST .../complete` has checked the upload; unfinished uploads expire.
#[utoipa::path(post, path = "/api/v1/tools/attachments", tag = "tools", security(("bearer" = [])), request_body = NewAttachment,
    responses((status = 201, body = AttachmentUpload), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn create_attachment(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    JsonBody(input): JsonBody<NewAttachment>,
) -> AppResult<impl IntoResponse> {
    let tenant = auth.tenant()?;
    let issues = check_attachment(&input.filename, &input.content_type, input.size);
    if !issues.is_empty() {
        return Err(Invalid(issues).into());
    }
    let store = blobs(&state)?;
    let common = new_common(auth.principal.user_id(), input.subject);
    let file_key = format!("{tenant}/attachments/{}", common.id);
    let attachment = Attachment {
        common,
        filename: input.filename,
        content_type: input.content_type,
        size: input.size,
        status: AttachmentStatus::Pending,
        file_key,
    };
    let attachment = state.services.tools().create(&auth.actor(), tenant, attachment).await?;
    let upload = store
        .upload(&attachment.file_key, &attachment.content_type, attachment.size, URL_TTL)
        .await
        .map_err(storage)?;
    Ok((StatusCode::CREATED, Json(AttachmentUpload { attachment, upload })))
}

/// Check the upload (size and content type as announced) and make the attachment
/// available; a mismatched upload is deleted (422).
#[utoipa::path(post, path = "/api/v1/tools/attachments/{attachment_id}/complete", tag = "tools", security(("bearer" = [])),
    params(("attachment_id" = String, Path)),
    responses((status = 200, body = AttachmentView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn complete_attachment(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
) -> AppResult<Json<AttachmentView>> {
    let tenant = auth.tenant()?;
    let (before, version) = state.services.tools().get::<Attachment>(tenant, &id).await?;
    let store = blobs(&state)?;
    if before.status == AttachmentStatus::Available {
        return view(&*store, before).await.map(Json);
    }
    let Some(found) = store.head(&before.file_key).await.map_err(storage)? else {
        return Err(AppError::conflict("nothing was uploaded yet".to_string()));
    };
    if found.size != before.size || found.content_type.as_deref() != Some(before.content_type.as_str()) {
        store.delete(&before.file_key).await.map_err(storage)?;
        let field = if found.size != before.size { "size" } else { "content_type" };
        return Err(Invalid::one(field, "the upload is not what was announced; it was deleted").into());
    }
    store.keep(&before.file_key).await.map_err(storage)?;
    let mut after = before.clone();
    after.status = AttachmentStatus::Available;
    let after = state.services.tools().replace(&auth.actor(), tenant, &before, version, after).await?;
    view(&*store, after).await.map(Json)
}

async fn view(store: &dyn Blobs, attachment: Attachment) -> AppResult<AttachmentView> {
    let download = match attachment.status {
        AttachmentStatus::Available => {
            Some(store.download(&attachment.file_key, &attachment.filename, URL_TTL).await.map_err(storage)?)
        }
        AttachmentStatus::Pending => None,
    };
    Ok(AttachmentView { attachment, download })
}

/// An attachment, with a download URL once available.
#[utoipa::path(get, path = "/api/v1/tools/attachments/{attachment_id}", tag = "tools", security(("bearer" = [])),
    params(("attachment_id" = String, Path)),
    responses((status = 200, body = AttachmentView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 503, body = Problem)))]
async fn get_attachment(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsRead>,
    Path(id): Path<String>,
) -> AppResult<Json<AttachmentView>> {
    let (attachment, _) = state.services.tools().get::<Attachment>(auth.tenant()?, &id).await?;
    view(&*blobs(&state)?, attachment).await.map(Json)
}

/// Delete an attachment and its file.
#[utoipa::path(delete, path = "/api/v1/tools/attachments/{attachment_id}", tag = "tools", security(("bearer" = [])),
    params(("attachment_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 503, body = Problem)))]
async fn delete_attachment(
    State(state): State<AppState>,
    auth: Authorized<need::RecordsWrite>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let tenant = auth.tenant()?;
    let (before, version) = state.services.tools().get::<Attachment>(tenant, &id).await?;
    blobs(&state)?.delete(&before.file_key).await.map_err(storage)?;
    state.services.tools().delete(&auth.actor(), tenant, &before, version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The local server's file routes (what S3's presigned URLs are on AWS): the caller's
/// own tenant's files only; export archives for owners only.
pub fn local_file_routes(files: Arc<LocalFiles>) -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            &format!("{}{{*key}}", crate::adapters::local_files::FILES_ROUTE),
            axum::routing::put(upload_file).get(download_file),
        )
        .layer(Extension(files))
        .layer(axum::extract::DefaultBodyLimit::max(crate::domain::tools::MAX_ATTACHMENT_BYTES as usize))
}

fn own_key<'a, R>(auth: &Authorized<R>, key: &'a str) -> AppResult<&'a str> {
    let tenant = auth.tenant()?;
    let missing = || AppError::NotFound("no such file".to_string());
    let rest = key.strip_prefix(tenant.as_str()).and_then(|r| r.strip_prefix('/')).ok_or_else(missing)?;
    if rest.starts_with("exports/") && !auth.principal.is_owner() {
        return Err(missing());
    }
    Ok(key)
}

async fn upload_file(
    auth: Authorized<need::RecordsWrite>,
    Extension(files): Extension<Arc<LocalFiles>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<StatusCode> {
    let key = own_key(&auth, &key)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match accept_upload(&files, key, content_type, &body).map_err(storage)? {
        true => Ok(StatusCode::OK),
        false => Err(Invalid::one("body", "is not the size and content type announced for this upload").into()),
    }
}

async fn download_file(
    auth: Authorized<need::RecordsRead>,
    Extension(files): Extension<Arc<LocalFiles>>,
    Path(key): Path<String>,
) -> AppResult<impl IntoResponse> {
    let key = own_key(&auth, &key)?;
    match files.read(key).map_err(storage)? {
        Some((bytes, content_type)) if files.expected(key).map_err(storage)?.is_none() => {
            Ok(([(header::CONTENT_TYPE, content_type)], bytes))
        }
        _ => Err(AppError::NotFound("no such file".to_string())),
    }
}
