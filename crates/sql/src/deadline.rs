//! A deadline that stops a running plan between two batches of any operator.
//!
//! DataFusion's operators yield to the runtime only when their input does: a hash join that
//! matches every probe row with a hundred thousand build rows, or an aggregate over it, can
//! run for minutes inside one poll, and a timer raced against the plan's stream never gets
//! to fire. [`guard`] wraps every node of a physical plan so that each batch it hands on
//! first checks the deadline (and spends the task's cooperative budget, so that the task
//! yields and can be cancelled): past the deadline the node answers [`DeadlinePassed`] and
//! the whole plan unwinds.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::coop::make_cooperative;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, ReplaceChildrenOptions,
    SendableRecordBatchStream,
};
use futures::Stream;

/// The error a guarded node answers once the deadline has passed.
#[derive(Debug, Clone, Copy)]
pub struct DeadlinePassed;

impl fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the statement's deadline passed")
    }
}

impl std::error::Error for DeadlinePassed {}

/// Wraps every node of `plan` in a [`Guarded`] node with the deadline `at`.
pub fn guard(plan: Arc<dyn ExecutionPlan>, at: Instant) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        Ok(Transformed::yes(
            Arc::new(Guarded { inner: node, at }) as Arc<dyn ExecutionPlan>
        ))
    })
    .map(|t| t.data)
}

/// A plan node whose streams end with [`DeadlinePassed`] once the deadline has passed. It
/// shows, displays and downcasts as the node it wraps.
#[derive(Debug)]
pub struct Guarded {
    inner: Arc<dyn ExecutionPlan>,
    at: Instant,
}

impl DisplayAs for Guarded {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for Guarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn downcast_delegate(&self) -> Option<&dyn ExecutionPlan> {
        Some(self.inner.as_ref())
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inner.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Guarded {
            inner: self.inner.clone().replace_children(children, options)?,
            at: self.at,
        }))
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Guarded {
            inner: self.inner.clone().with_new_children(children)?,
            at: self.at,
        }))
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Guarded {
            inner: self.inner.clone().reset_state()?,
            at: self.at,
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let inner = self.inner.execute(partition, context)?;
        Ok(make_cooperative(Box::pin(GuardedStream {
            inner,
            at: self.at,
            done: false,
        })))
    }
}

/// A stream that checks the deadline before each batch.
struct GuardedStream {
    inner: SendableRecordBatchStream,
    at: Instant,
    done: bool,
}

impl Stream for GuardedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if Instant::now() >= self.at {
            self.done = true;
            return Poll::Ready(Some(Err(DataFusionError::External(Box::new(
                DeadlinePassed,
            )))));
        }
        self.inner.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for GuardedStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}
