//! Polygon geometry in world micrometres.

/// Even-odd rule: true when `pos_um` is inside `polygon_um` (closed implicitly). Self-intersecting
/// polygons (a lasso that crosses itself) count a point inside when it is enclosed an odd number of times.
pub fn polygon_contains(polygon_um: &[[f32; 2]], pos_um: [f64; 2]) -> bool {
    let n = polygon_um.len();
    if n < 3 {
        return false;
    }
    let (px, py) = (pos_um[0], pos_um[1]);
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let (xi, yi) = (f64::from(polygon_um[i][0]), f64::from(polygon_um[i][1]));
        let (xj, yj) = (f64::from(polygon_um[j][0]), f64::from(polygon_um[j][1]));
        if (yi > py) != (yj > py) {
            let x_cross = xj + (py - yj) * (xi - xj) / (yi - yj);
            if px < x_cross {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// Shoelace area in µm² (absolute).
pub fn polygon_area(polygon_um: &[[f32; 2]]) -> f64 {
    let n = polygon_um.len();
    let mut twice = 0.0;
    for i in 0..n {
        let a = polygon_um[i];
        let b = polygon_um[(i + 1) % n];
        twice += f64::from(a[0]) * f64::from(b[1]) - f64::from(b[0]) * f64::from(a[1]);
    }
    (twice * 0.5).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_and_bow_tie() {
        let square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        assert!(polygon_contains(&square, [5.0, 5.0]));
        assert!(!polygon_contains(&square, [15.0, 5.0]));
        assert!(!polygon_contains(&square, [5.0, -0.1]));
        assert_eq!(polygon_area(&square), 100.0);
        // A bow tie crossing itself at (5, 5): both lobes are inside, the area outside is not.
        let bow = [[0.0, 0.0], [10.0, 10.0], [10.0, 0.0], [0.0, 10.0]];
        assert!(polygon_contains(&bow, [2.0, 5.0]));
        assert!(polygon_contains(&bow, [8.0, 5.0]));
        assert!(!polygon_contains(&bow, [5.0, 1.0]));
        assert!(!polygon_contains(&[[0.0, 0.0], [1.0, 1.0]], [0.5, 0.5]));
    }
}
