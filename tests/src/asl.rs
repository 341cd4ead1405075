//! A small in-process interpreter of the part of the Amazon States Language keyrotor's state
//! machines use: Task (Parameters, ResultSelector, ResultPath, Retry, Catch), Pass, Choice
//! (StringEquals, BooleanEquals, NumericEquals, IsPresent, IsBoolean, IsNull, And, Not), Wait, Succeed and
//! Fail, paths of the form `$.a.b` and `$$.Execution.Id` / `StartTime`, and `States.MathAdd`. Tasks call
//! the real handlers in-process. Anything else in a definition is an error, not a guess.
//!
//! It runs the real `statemachine/*.asl.json` files, so invariant tests in-process follow the
//! same states, retries and catches as the service; what only the service shows (its timing,
//! its history, the Lambda wire) stays with the emulator tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

/// A failed Task: the error name (`errorType`) and its message.
pub type TaskError = (String, String);
type TaskFuture<'a> = Pin<Box<dyn Future<Output = std::result::Result<Value, TaskError>> + 'a>>;
type Task<'a> = Box<dyn Fn(Value) -> TaskFuture<'a> + 'a>;

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Succeeded,
    Failed { error: String, cause: String },
}

/// An execution: how it ended, its output (or last state input when it failed), and the
/// states it entered, in order.
#[derive(Debug, Clone)]
pub struct Execution {
    pub status: Status,
    pub output: Value,
    pub entered: Vec<String>,
}

impl Execution {
    pub fn succeeded(&self) -> bool {
        self.status == Status::Succeeded
    }
}

/// A definition and the in-process functions its Tasks call, by function name (the last
/// part of the Task's `Resource` ARN).
pub struct Interpreter<'a> {
    definition: Value,
    tasks: BTreeMap<String, Task<'a>>,
    /// Longest a Wait may really wait (the deletion delay is zero in these tests).
    max_wait: Duration,
}

impl<'a> Interpreter<'a> {
    pub fn new(definition: &str) -> Result<Self> {
        Ok(Interpreter {
            definition: serde_json::from_str(definition).context("definition is JSON")?,
            tasks: BTreeMap::new(),
            max_wait: Duration::from_secs(5),
        })
    }

    /// Serves the Tasks whose `Resource` ends in `function:<name>` with `task`.
    pub fn task<F, Fut>(mut self, name: &str, task: F) -> Self
    where
        F: Fn(Value) -> Fut + 'a,
        Fut: Future<Output = std::result::Result<Value, TaskError>> + 'a,
    {
        self.tasks.insert(
            name.to_owned(),
            Box::new(move |input| Box::pin(task(input))),
        );
        self
    }

    /// Runs an execution named `name` with `input` to its end.
    pub async fn run(&self, name: &str, input: Value) -> Result<Execution> {
        let states = self.definition["States"].as_object().context("no States")?;
        let context = json!({"Execution": {
            "Id": format!("arn:aws:states:local:execution:{name}"),
            "Name": name,
            "StartTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }});
        let mut current = self.definition["StartAt"]
            .as_str()
            .context("no StartAt")?
            .to_owned();
        let mut data = input;
        let mut entered = Vec::new();
        loop {
            if entered.len() > 500 {
                bail!("more than 500 transitions: a loop?");
            }
            entered.push(current.clone());
            let state = states
                .get(&current)
                .with_context(|| format!("no state {current}"))?;
            let ty = state["Type"].as_str().unwrap_or_default();
            let next = match ty {
                "Task" => match self.task_state(state, &data, &context).await? {
                    Ok(result) => {
                        data = apply_result_path(state, data, result)?;
                        next_of(state)
                    }
                    Err((error, cause, catch_next, result_path)) => match catch_next {
                        Some(target) => {
                            let error_value = json!({"Error": error, "Cause": cause});
                            data = set_path(data, &result_path, error_value)?;
                            Some(target)
                        }
                        None => {
                            return Ok(Execution {
                                status: Status::Failed { error, cause },
                                output: data,
                                entered,
                            })
                        }
                    },
                },
                "Pass" => {
                    // A `"Result": null` is a result (null), not an absent one.
                    let result = match (state.get("Parameters"), state.get("Result")) {
                        (None, None) => data.clone(),
                        (None, Some(result)) => result.clone(),
                        (Some(params), _) => resolve(params, &data, &context)?,
                    };
                    data = apply_result_path(state, data, result)?;
                    next_of(state)
                }
                "Choice" => Some(choose(state, &data)?),
                "Wait" => {
                    let wait = if let Some(secs) = state["Seconds"].as_u64() {
                        Duration::from_secs(secs)
                    } else if let Some(path) = state["TimestampPath"].as_str() {
                        let at = get_path(&data, path, &context)
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .context("TimestampPath")?;
                        let at = chrono::DateTime::parse_from_rfc3339(&at)?;
                        (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                            .to_std()
                            .unwrap_or_default()
                    } else {
                        bail!("{current}: unsupported Wait");
                    };
                    tokio::time::sleep(wait.min(self.max_wait)).await;
                    next_of(state)
                }
                "Succeed" => {
                    return Ok(Execution {
                        status: Status::Succeeded,
                        output: data,
                        entered,
                    })
                }
                "Fail" => {
                    let text = |key: &str, path_key: &str| -> String {
                        state[key].as_str().map(str::to_owned).unwrap_or_else(|| {
                            state[path_key]
                                .as_str()
                                .and_then(|p| get_path(&data, p, &context))
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default()
                        })
                    };
                    return Ok(Execution {
                        status: Status::Failed {
                            error: text("Error", "ErrorPath"),
                            cause: text("Cause", "CausePath"),
                        },
                        output: data,
                        entered,
                    });
                }
                other => bail!("{current}: unsupported state type {other}"),
            };
            match next {
                Some(n) => current = n,
                None if state["End"] == true => {
                    return Ok(Execution {
                        status: Status::Succeeded,
                        output: data,
                        entered,
                    })
                }
                None => bail!("{current}: neither Next nor End"),
            }
        }
    }

    /// Runs a Task with its Retry; on a final error, the matching Catch (next state and
    /// result path), if any.
    async fn task_state(
        &self,
        state: &Value,
        data: &Value,
        context: &Value,
    ) -> Result<std::result::Result<Value, (String, String, Option<String>, String)>> {
        let resource = state["Resource"]
            .as_str()
            .context("Task without Resource")?;
        let function = resource.rsplit("function:").next().unwrap_or(resource);
        let task = self
            .tasks
            .get(function)
            .with_context(|| format!("no in-process function for {resource}"))?;
        let input = match &state["Parameters"] {
            Value::Null => data.clone(),
            params => match resolve(params, data, context) {
                Ok(input) => input,
                // A missing path fails the state as the service does.
                Err(e) => return Ok(Err(caught(state, "States.Runtime", &e.to_string()))),
            },
        };
        let retriers = state["Retry"].as_array().cloned().unwrap_or_default();
        let mut attempts = vec![0u64; retriers.len()];
        loop {
            match task(input.clone()).await {
                Ok(output) => {
                    let output = match &state["ResultSelector"] {
                        Value::Null => output,
                        selector => resolve(selector, &output, context)?,
                    };
                    return Ok(Ok(output));
                }
                Err((error, cause)) => {
                    let retrier = retriers.iter().position(|r| matches_error(r, &error));
                    if let Some(i) = retrier {
                        let max = retriers[i]["MaxAttempts"].as_u64().unwrap_or(3);
                        if attempts[i] < max {
                            attempts[i] += 1;
                            // No backoff in-process: the faults decide what a retry meets.
                            tokio::task::yield_now().await;
                            continue;
                        }
                    }
                    return Ok(Err(caught(state, &error, &cause)));
                }
            }
        }
    }
}

fn caught(state: &Value, error: &str, cause: &str) -> (String, String, Option<String>, String) {
    let catcher = state["Catch"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| matches_error(c, error));
    (
        error.to_owned(),
        cause.to_owned(),
        catcher.and_then(|c| c["Next"].as_str().map(str::to_owned)),
        catcher
            .and_then(|c| c["ResultPath"].as_str())
            .unwrap_or("$")
            .to_owned(),
    )
}

fn matches_error(rule: &Value, error: &str) -> bool {
    rule["ErrorEquals"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e == error || e == "States.ALL")
}

fn next_of(state: &Value) -> Option<String> {
    state["Next"].as_str().map(str::to_owned)
}

fn apply_result_path(state: &Value, data: Value, result: Value) -> Result<Value> {
    match &state["ResultPath"] {
        Value::Null => Ok(result),
        Value::String(path) => set_path(data, path, result),
        other => bail!("unsupported ResultPath {other}"),
    }
}

/// Reads `$.a.b` from `data`, or `$$.x` from the context; `None` if absent.
fn get_path(data: &Value, path: &str, context: &Value) -> Option<Value> {
    let (root, rest) = if let Some(rest) = path.strip_prefix("$$") {
        (context, rest)
    } else {
        (data, path.strip_prefix('$')?)
    };
    let mut at = root;
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        at = at.as_object()?.get(part)?;
    }
    Some(at.clone())
}

fn set_path(data: Value, path: &str, value: Value) -> Result<Value> {
    let rest = path
        .strip_prefix('$')
        .with_context(|| format!("unsupported path {path}"))?;
    let parts: Vec<&str> = rest.split('.').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Ok(value);
    }
    let mut data = match data {
        Value::Object(map) => Value::Object(map),
        _ => Value::Object(Map::new()),
    };
    let mut at = &mut data;
    for part in &parts[..parts.len() - 1] {
        let map = at.as_object_mut().context("path through a non-object")?;
        at = map
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    at.as_object_mut()
        .context("path through a non-object")?
        .insert(parts[parts.len() - 1].to_owned(), value);
    Ok(data)
}

/// Fills a Parameters or ResultSelector template: `key.$` fields take a path's value or an
/// intrinsic's result; other fields are copied (objects recursively).
fn resolve(template: &Value, data: &Value, context: &Value) -> Result<Value> {
    let Value::Object(fields) = template else {
        return Ok(template.clone());
    };
    let mut out = Map::new();
    for (key, value) in fields {
        if let Some(name) = key.strip_suffix(".$") {
            let expr = value.as_str().context("a .$ field holds a path")?;
            let resolved = if let Some(args) = expr
                .strip_prefix("States.MathAdd(")
                .and_then(|a| a.strip_suffix(')'))
            {
                let mut sum = 0i64;
                for arg in args.split(',').map(str::trim) {
                    sum += match get_path(data, arg, context) {
                        Some(v) => v.as_i64().context("MathAdd of a non-integer")?,
                        None => arg.parse::<i64>().context("MathAdd argument")?,
                    };
                }
                json!(sum)
            } else if expr.starts_with("States.") {
                bail!("unsupported intrinsic {expr}");
            } else {
                get_path(data, expr, context)
                    .with_context(|| format!("the path {expr} is absent from the input"))?
            };
            out.insert(name.to_owned(), resolved);
        } else {
            out.insert(key.clone(), resolve(value, data, context)?);
        }
    }
    Ok(Value::Object(out))
}

fn choose(state: &Value, data: &Value) -> Result<String> {
    for rule in state["Choices"].as_array().into_iter().flatten() {
        if test(rule, data)? {
            return rule["Next"]
                .as_str()
                .map(str::to_owned)
                .context("a choice without Next");
        }
    }
    state["Default"]
        .as_str()
        .map(str::to_owned)
        .context("no choice matched and no Default")
}

fn test(rule: &Value, data: &Value) -> Result<bool> {
    if let Some(all) = rule["And"].as_array() {
        for r in all {
            if !test(r, data)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if !rule["Not"].is_null() {
        return Ok(!test(&rule["Not"], data)?);
    }
    let path = rule["Variable"]
        .as_str()
        .context("a rule without Variable")?;
    let value = get_path(data, path, &Value::Null);
    let comparisons = [
        "StringEquals",
        "BooleanEquals",
        "NumericEquals",
        "IsPresent",
        "IsBoolean",
        "IsNull",
    ];
    let Some(op) = comparisons.iter().find(|op| !rule[**op].is_null()) else {
        bail!("unsupported choice rule {rule}");
    };
    let expected = &rule[*op];
    Ok(match *op {
        "IsPresent" => value.is_some() == (expected == true),
        "IsBoolean" => value.as_ref().is_some_and(Value::is_boolean) == (expected == true),
        "IsNull" => value.as_ref().is_some_and(Value::is_null) == (expected == true),
        _ => value.as_ref() == Some(expected),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_and_write_nested_fields() {
        let data = json!({"a": {"b": 1}});
        assert_eq!(get_path(&data, "$.a.b", &Value::Null), Some(json!(1)));
        assert_eq!(get_path(&data, "$.a.c", &Value::Null), None);
        let set = set_path(data, "$.x.y", json!(true)).expect("set");
        assert_eq!(set, json!({"a": {"b": 1}, "x": {"y": true}}));
    }

    #[test]
    fn math_add_and_paths_fill_parameters() {
        let data = json!({"t": {"n": 2}, "p": {"n": 3}});
        let out = resolve(
            &json!({"n.$": "States.MathAdd($.t.n, $.p.n)", "k": "v"}),
            &data,
            &Value::Null,
        )
        .expect("resolved");
        assert_eq!(out, json!({"n": 5, "k": "v"}));
    }
}
