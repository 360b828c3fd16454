//! OME-NGFF coordinate transformations as spatialdata writes them (`identity`, `scale`,
//! `translation`, `affine`, `mapAxis`, `sequence`, each with named `input`/`output` axes),
//! reduced to the 2-D affine map of the x and y axes.

use cs_xenium::Affine2;
use serde_json::Value;

/// One element's transformation to one coordinate system.
#[derive(Debug, Clone, PartialEq)]
pub struct ToCoordinateSystem {
    pub coordinate_system: String,
    /// Maps the element's (x, y) to the coordinate system's (x, y).
    pub cs_from_element: Affine2,
}

/// The transformations listed in an element's `coordinateTransformations` (a list, each with an
/// `output.name`). Errors name what is malformed.
pub fn parse_transformations(list: &Value, element_axes: &[String]) -> Result<Vec<ToCoordinateSystem>, String> {
    let Some(list) = list.as_array() else {
        return Err("`coordinateTransformations` is not a list".to_owned());
    };
    list.iter()
        .map(|t| {
            let coordinate_system = t
                .get("output")
                .and_then(|o| o.get("name").or(Some(o)))
                .and_then(Value::as_str)
                .unwrap_or("global")
                .to_owned();
            let input = axes_of(t.get("input")).unwrap_or_else(|| element_axes.to_vec());
            let output = axes_of(t.get("output")).unwrap_or_else(|| input.clone());
            Ok(ToCoordinateSystem {
                coordinate_system,
                cs_from_element: to_affine(t, &input, &output)?,
            })
        })
        .collect()
}

/// The axis names of a transformation's `input` or `output` (`{"name", "axes": [{"name"}]}`).
fn axes_of(side: Option<&Value>) -> Option<Vec<String>> {
    side?
        .get("axes")?
        .as_array()?
        .iter()
        .map(|a| a.get("name").or(Some(a)).and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn numbers(value: Option<&Value>, what: &str) -> Result<Vec<f64>, String> {
    value
        .and_then(Value::as_array)
        .and_then(|v| v.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
        .ok_or_else(|| format!("a `{what}` transformation without a list of numbers"))
}

fn position(axes: &[String], name: &str) -> Option<usize> {
    axes.iter().position(|a| a == name)
}

/// One transformation as a 2-D affine from the input's (x, y) to the output's (x, y).
pub fn to_affine(t: &Value, input: &[String], output: &[String]) -> Result<Affine2, String> {
    let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
    let per_axis = |values: &[f64], axis: &str, default: f64| -> Result<f64, String> {
        match position(input, axis) {
            Some(i) => values
                .get(i)
                .copied()
                .ok_or_else(|| format!("`{kind}` has {} values for {} axes", values.len(), input.len())),
            // Without named axes the last two values are y then x (NGFF order).
            None if input.is_empty() && values.len() >= 2 => Ok(values[values.len() - if axis == "x" { 1 } else { 2 }]),
            None => Ok(default),
        }
    };
    let mut affine = Affine2::IDENTITY;
    match kind {
        "identity" => {}
        "scale" => {
            let s = numbers(t.get("scale"), "scale")?;
            affine.rows[0][0] = per_axis(&s, "x", 1.0)?;
            affine.rows[1][1] = per_axis(&s, "y", 1.0)?;
        }
        "translation" => {
            let s = numbers(t.get("translation"), "translation")?;
            affine.rows[0][2] = per_axis(&s, "x", 0.0)?;
            affine.rows[1][2] = per_axis(&s, "y", 0.0)?;
        }
        "affine" => {
            let rows = t
                .get("affine")
                .and_then(Value::as_array)
                .ok_or("an `affine` transformation without a matrix")?;
            let rows: Vec<Vec<f64>> = rows
                .iter()
                .map(|r| numbers(Some(r), "affine"))
                .collect::<Result<_, _>>()?;
            let columns = input.len() + 1;
            if rows.iter().any(|r| r.len() != columns) {
                return Err(format!(
                    "an `affine` matrix whose rows are not {columns} long ({} input axes + 1)",
                    input.len()
                ));
            }
            let (Some(in_x), Some(in_y)) = (position(input, "x"), position(input, "y")) else {
                return Err(format!(
                    "an `affine` whose input axes ({}) lack x or y",
                    input.join(", ")
                ));
            };
            let (Some(out_x), Some(out_y)) = (position(output, "x"), position(output, "y")) else {
                return Err(format!(
                    "an `affine` whose output axes ({}) lack x or y",
                    output.join(", ")
                ));
            };
            let (Some(row_x), Some(row_y)) = (rows.get(out_x), rows.get(out_y)) else {
                return Err(format!(
                    "an `affine` with {} rows for {} output axes",
                    rows.len(),
                    output.len()
                ));
            };
            affine.rows[0] = [row_x[in_x], row_x[in_y], row_x[input.len()]];
            affine.rows[1] = [row_y[in_x], row_y[in_y], row_y[input.len()]];
        }
        "mapAxis" => {
            // {"mapAxis": {"x": "y", "y": "x"}}: output axis <- input axis.
            let map = t
                .get("mapAxis")
                .and_then(Value::as_object)
                .ok_or("a `mapAxis` without a map")?;
            let row = |axis: &'static str| match map.get(axis).and_then(Value::as_str).unwrap_or(axis) {
                "x" => [1.0, 0.0, 0.0],
                "y" => [0.0, 1.0, 0.0],
                _ => [0.0, 0.0, 0.0],
            };
            affine.rows[0] = row("x");
            affine.rows[1] = row("y");
        }
        "sequence" => {
            let steps = t
                .get("transformations")
                .and_then(Value::as_array)
                .ok_or("a `sequence` without `transformations`")?;
            let mut axes = input.to_vec();
            for step in steps {
                let step_input = axes_of(step.get("input")).unwrap_or_else(|| axes.clone());
                let step_output = axes_of(step.get("output")).unwrap_or_else(|| step_input.clone());
                affine = compose(&to_affine(step, &step_input, &step_output)?, &affine);
                axes = step_output;
            }
        }
        other => return Err(format!("unknown transformation type {other:?}")),
    }
    Ok(affine)
}

/// `a` after `b`: `compose(a, b).apply(p) == a.apply(b.apply(p))`.
pub fn compose(a: &Affine2, b: &Affine2) -> Affine2 {
    let mut rows = [[0.0; 3]; 3];
    for (i, row) in rows.iter_mut().enumerate() {
        for (j, value) in row.iter_mut().enumerate() {
            *value = (0..3).map(|k| a.rows[i][k] * b.rows[k][j]).sum();
        }
    }
    Affine2 { rows }
}

/// A uniform scale's factor, if `affine` is one (no rotation, shear or translation).
pub fn uniform_scale(affine: &Affine2) -> Option<f64> {
    let r = &affine.rows;
    let s = r[0][0];
    let tolerance = 1e-9 * s.abs().max(1.0);
    ((r[1][1] - s).abs() < tolerance
        && r[0][1].abs() < tolerance
        && r[1][0].abs() < tolerance
        && r[0][2].abs() < tolerance
        && r[1][2].abs() < tolerance
        && s > 0.0)
        .then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, axes: &[&str]) -> Affine2 {
        let value: Value = serde_json::from_str(json).unwrap_or_default();
        let axes: Vec<String> = axes.iter().map(|s| (*s).to_owned()).collect();
        let list = parse_transformations(&Value::Array(vec![value]), &axes).unwrap_or_default();
        list.first().map_or(Affine2::IDENTITY, |t| t.cs_from_element)
    }

    #[test]
    fn affine_rows_follow_the_named_axes() {
        // spatialdata writes an image's affine with input (c, y, x) and output (c, x, y).
        let a = parse(
            r#"{"type": "affine", "affine": [[1,0,0,0],[0,-0.5,2,10],[0,2,0.5,-3]],
                "input": {"name": "cyx", "axes": [{"name":"c"},{"name":"y"},{"name":"x"}]},
                "output": {"name": "global", "axes": [{"name":"c"},{"name":"x"},{"name":"y"}]}}"#,
            &["c", "y", "x"],
        );
        // x' = 2x - 0.5y + 10; y' = 0.5x + 2y - 3.
        assert_eq!(a.apply([1.0, 1.0]), [11.5, -0.5]);
    }

    #[test]
    fn sequence_applies_in_order_and_scale_reads_axes_by_name() {
        let a = parse(
            r#"{"type": "sequence", "input": {"axes": [{"name":"c"},{"name":"y"},{"name":"x"}]},
                "output": {"name": "aligned", "axes": [{"name":"c"},{"name":"y"},{"name":"x"}]},
                "transformations": [
                  {"type": "scale", "scale": [1, 3, 2]},
                  {"type": "translation", "translation": [0, 5, 7]}]}"#,
            &["c", "y", "x"],
        );
        assert_eq!(a.apply([1.0, 1.0]), [9.0, 8.0]);
        assert_eq!(uniform_scale(&a), None);
        let s = parse(
            r#"{"type": "scale", "scale": [4, 4], "input": {"axes": ["x", "y"]}}"#,
            &["x", "y"],
        );
        assert_eq!(uniform_scale(&s), Some(4.0));
    }

    #[test]
    fn map_axis_swaps() {
        let a = parse(r#"{"type": "mapAxis", "mapAxis": {"x": "y", "y": "x"}}"#, &["x", "y"]);
        assert_eq!(a.apply([1.0, 2.0]), [2.0, 1.0]);
    }

    #[test]
    fn malformed_transformations_say_what_is_wrong() {
        let value: Value = serde_json::from_str(r#"[{"type": "scale"}]"#).unwrap_or_default();
        let error = parse_transformations(&value, &["x".to_owned(), "y".to_owned()]).err();
        assert!(error.is_some_and(|e| e.contains("scale")));
        let value: Value = serde_json::from_str(r#"[{"type": "warp"}]"#).unwrap_or_default();
        let error = parse_transformations(&value, &[]).err();
        assert!(error.is_some_and(|e| e.contains("warp")));
    }
}
