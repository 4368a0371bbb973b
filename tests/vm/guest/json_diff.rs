//! Structural comparison of JSON values, reporting each difference by path.

use serde_json::Value;

/// Differences between `got` and `want`, as `path: got X, want Y` lines.
///
/// Keys of `got` that `want` does not mention are allowed (extra fields are
/// welcome); everything `want` mentions must be present and equal. Arrays are
/// compared element by element, in order.
pub fn diff(got: &Value, want: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("$", got, want, &mut out);
    out
}

fn walk(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (key, wv) in w {
                let sub = format!("{path}.{key}");
                match g.get(key) {
                    Some(gv) => walk(&sub, gv, wv, out),
                    None => out.push(format!("{sub}: missing, want {}", short(wv))),
                }
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            if g.len() != w.len() {
                out.push(format!(
                    "{path}: {} items, want {}: got {}, want {}",
                    g.len(),
                    w.len(),
                    short(got),
                    short(want)
                ));
                return;
            }
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                walk(&format!("{path}[{i}]"), gv, wv, out);
            }
        }
        (Value::Number(g), Value::Number(w)) => {
            let same = match (g.as_u64(), w.as_u64()) {
                (Some(a), Some(b)) => a == b,
                _ => g.as_f64() == w.as_f64(),
            };
            if !same {
                out.push(format!("{path}: got {g}, want {w}"));
            }
        }
        _ if got == want => {}
        _ => out.push(format!("{path}: got {}, want {}", short(got), short(want))),
    }
}

/// A value printed on one line, cut to a readable length.
pub fn short(v: &Value) -> String {
    const MAX: usize = 160;
    let s = v.to_string();
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_have_no_diff() {
        let v = json!({"a": [1, 2, {"b": null}], "c": "x"});
        assert!(diff(&v, &v).is_empty());
    }

    #[test]
    fn reports_each_difference_by_path() {
        let got = json!({"nodes": [{"id": 0, "cpus": [0]}], "extra": true});
        let want = json!({"nodes": [{"id": 1, "cpus": [0, 1]}], "distances": null});
        let d = diff(&got, &want);
        // Keys come in serde_json's map order (sorted).
        assert_eq!(
            d,
            vec![
                "$.distances: missing, want null".to_string(),
                "$.nodes[0].cpus: 1 items, want 2: got [0], want [0,1]".to_string(),
                "$.nodes[0].id: got 0, want 1".to_string(),
            ]
        );
    }

    #[test]
    fn type_mismatch_is_a_difference() {
        let d = diff(&json!({"m": null}), &json!({"m": {"ids": []}}));
        assert_eq!(d, vec!["$.m: got null, want {\"ids\":[]}".to_string()]);
    }

    #[test]
    fn integers_and_floats_compare_by_value() {
        assert!(diff(&json!(2.0), &json!(2.0)).is_empty());
        assert_eq!(diff(&json!(3), &json!(2)).len(), 1);
    }

    #[test]
    fn long_values_are_cut() {
        let long = json!(vec![1234567; 100]);
        assert!(short(&long).ends_with("..."));
        assert!(short(&long).len() < 200);
    }
}
