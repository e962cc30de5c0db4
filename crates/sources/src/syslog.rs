//! The syslog source.
use serde::Deserialize;
use crate::{Source, SourceContext, SourceError, StatusHandle};
/// Syslog settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SyslogConfig {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
}
/// Syslog.
pub struct SyslogSource { status: StatusHandle, name: String }
impl SyslogSource {
    /// New.
    pub fn new(name: &str, _cfg: SyslogConfig) -> Result<Self, SourceError> { Ok(SyslogSource { status: StatusHandle::new(name, "syslog"), name: name.into() }) }
}
impl Source for SyslogSource {
    fn name(&self) -> &str { &self.name }
    fn kind(&self) -> &'static str { "syslog" }
    fn status(&self) -> StatusHandle { self.status.clone() }
    fn run(self: Box<Self>, _ctx: SourceContext) -> Result<(), SourceError> { Ok(()) }
}
