//! Grid descriptors (fst.md §3.3): what grtyp and ig1..ig4 say about where the points are,
//! and the rotated-pole arithmetic that turns rotated coordinates into true lat/lon.

/// The two points that define a rotated (`E`) grid, decoded from its ig1..ig4 (`cigaxg`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rotation {
    pub xlat1: f64,
    pub xlon1: f64,
    pub xlat2: f64,
    pub xlon2: f64,
}

impl Rotation {
    /// Undoes the bit shuffle `cxgaig` packs the two points into.
    pub fn from_ig(ig1: u32, ig2: u32, ig3: u32, ig4: u32) -> Rotation {
        let (ig1, ig2, ig3, ig4) = (i64::from(ig1), i64::from(ig2), i64::from(ig3), i64::from(ig4));
        let lg1 = (ig1 << 2) | (ig3 & 3);
        let mut lg2 = (ig2 << 2) | (ig4 & 3);
        let mut lg3 = ig3 >> 2;
        let lg4 = ig4 >> 2;
        if lg2 > 3600 {
            lg2 -= 7201;
        }
        if lg3 < 3559 {
            lg3 += 16384;
        }
        Rotation {
            xlat1: (lg1 - 3600) as f64 / 40.0,
            xlon1: (lg3 - 3600) as f64 / 40.0,
            xlat2: lg2 as f64 / 40.0,
            xlon2: lg4 as f64 / 40.0,
        }
    }

    /// Rows of the matrix that takes true Cartesian coordinates to rotated ones: the first
    /// point is rotated longitude 180° on the rotated equator, the plane of both points is
    /// the rotated equator.
    fn matrix(&self) -> [[f64; 3]; 3] {
        let p1 = xyz(self.xlat1, self.xlon1);
        let p2 = xyz(self.xlat2, self.xlon2);
        let a = dot(p1, p2);
        let c = cross(p1, p2);
        let b = norm(c);
        let r2 = [
            (a * p1[0] - p2[0]) / b,
            (a * p1[1] - p2[1]) / b,
            (a * p1[2] - p2[2]) / b,
        ];
        let r2n = norm(r2);
        [
            [-p1[0], -p1[1], -p1[2]],
            [r2[0] / r2n, r2[1] / r2n, r2[2] / r2n],
            [c[0] / b, c[1] / b, c[2] / b],
        ]
    }

    /// True latitude and longitude (0..360) of the rotated point (`rlat`, `rlon`), both in
    /// librmn's rotated frame (the `>>`/`^^` values).
    pub fn true_position(&self, rlat: f64, rlon: f64) -> (f64, f64) {
        let m = self.matrix();
        let r = xyz(rlat, rlon);
        let t = [
            m[0][0] * r[0] + m[1][0] * r[1] + m[2][0] * r[2],
            m[0][1] * r[0] + m[1][1] * r[1] + m[2][1] * r[2],
            m[0][2] * r[0] + m[1][2] * r[1] + m[2][2] * r[2],
        ];
        latlon(t)
    }

    /// The rotated longitude (librmn's frame, 0..360) of the true north pole.
    pub fn true_north_rotated_lon(&self) -> f64 {
        let m = self.matrix();
        let r = [m[0][2], m[1][2], m[2][2]];
        latlon(r).1
    }

    /// The true position of the rotated grid's north pole (CF `grid_north_pole_latitude`
    /// and `_longitude`).
    pub fn north_pole(&self) -> (f64, f64) {
        latlon(self.matrix()[2])
    }
}

fn xyz(lat: f64, lon: f64) -> [f64; 3] {
    let (lat, lon) = (lat.to_radians(), lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

fn latlon(v: [f64; 3]) -> (f64, f64) {
    let lat = v[2].clamp(-1.0, 1.0).asin().to_degrees();
    let lon = v[1].atan2(v[0]).to_degrees().rem_euclid(360.0);
    (lat, lon)
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm(v: [f64; 3]) -> f64 {
    dot(v, v).sqrt()
}

/// A regular lat-lon (`L`) grid: first point and steps, in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatLon {
    pub lat0: f64,
    pub lon0: f64,
    pub dlat: f64,
    pub dlon: f64,
}

impl LatLon {
    pub fn from_ig(ig1: u32, ig2: u32, ig3: u32, ig4: u32) -> LatLon {
        LatLon {
            lat0: f64::from(ig3) / 100.0 - 90.0,
            lon0: f64::from(ig4) / 100.0,
            dlat: f64::from(ig1) / 100.0,
            dlon: f64::from(ig2) / 100.0,
        }
    }

    pub fn lat(&self, j: u32) -> f64 {
        self.lat0 + f64::from(j) * self.dlat
    }

    pub fn lon(&self, i: u32) -> f64 {
        self.lon0 + f64::from(i) * self.dlon
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_of_the_fixture_grid() {
        // fixtures/fst/rsf/README.md: cxgaig("E", 45, 260, 0, 350) = (1350, 0, 56000, 56000);
        // fstd2nc reports its pole at latitude 45, longitude 80.
        let r = Rotation::from_ig(1350, 0, 56000, 56000);
        assert_eq!(
            r,
            Rotation {
                xlat1: 45.0,
                xlon1: 260.0,
                xlat2: 0.0,
                xlon2: 350.0
            }
        );
        let (lat, lon) = r.north_pole();
        assert!(
            (lat - 45.0).abs() < 1e-9 && (lon - 80.0).abs() < 1e-9,
            "{lat} {lon}"
        );
        // The first point sits at rotated (0, 180), the second at rotated (0, 270).
        let (lat, lon) = r.true_position(0.0, 180.0);
        assert!(
            (lat - 45.0).abs() < 1e-9 && (lon - 260.0).abs() < 1e-9,
            "{lat} {lon}"
        );
        let (lat, lon) = r.true_position(0.0, 270.0);
        assert!(lat.abs() < 1e-9 && (lon - 350.0).abs() < 1e-9, "{lat} {lon}");
    }

    #[test]
    fn regular_grid_from_ig() {
        // cxgaig("L", -45, 10, 1.5, 2.0) = (150, 200, 4500, 1000)
        let g = LatLon::from_ig(150, 200, 4500, 1000);
        assert_eq!(
            (g.lat(0), g.lon(0), g.lat(2), g.lon(3)),
            (-45.0, 10.0, -42.0, 16.0)
        );
    }
}
