//! A file server on 127.0.0.1 that holds every download back until the
//! test releases it: a task of step 3 stays running, at its download, for
//! as long as a test needs it to.

use std::sync::{Arc, Condvar, Mutex};

/// A file server on 127.0.0.1 with `count` PNG images, that holds every
/// download back until [`HeldImages::release`]: a task of step 3 stays
/// running (at its download) until then. Dropping it stops it.
pub struct HeldImages {
    address: std::net::SocketAddr,
    gate: Arc<(Mutex<bool>, Condvar)>,
    server: Arc<tiny_http::Server>,
    threads: Vec<std::thread::JoinHandle<()>>,
    count: usize,
}

impl HeldImages {
    pub fn start(count: usize) -> HeldImages {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("a port"));
        let address = server.server_addr().to_ip().expect("an IP address");
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let png = png_bytes();
        // One thread per download, so that held ones block nobody else.
        let threads = (0..4)
            .map(|_| {
                let (server, gate, png) = (Arc::clone(&server), Arc::clone(&gate), png.clone());
                std::thread::spawn(move || {
                    while let Ok(request) = server.recv() {
                        let (open, opened) = &*gate;
                        let mut released = open.lock().expect("the gate");
                        while !*released {
                            released = opened.wait(released).expect("the gate");
                        }
                        drop(released);
                        let _ = request.respond(tiny_http::Response::from_data(png.clone()));
                    }
                })
            })
            .collect();
        HeldImages {
            address,
            gate,
            server,
            threads,
            count,
        }
    }

    pub fn urls(&self) -> Vec<String> {
        (0..self.count)
            .map(|i| format!("http://{}/picture-{i}.png", self.address))
            .collect()
    }

    pub fn release(&self) {
        let (open, opened) = &*self.gate;
        *open.lock().expect("the gate") = true;
        opened.notify_all();
    }
}

impl Drop for HeldImages {
    fn drop(&mut self) {
        self.release();
        for _ in &self.threads {
            self.server.unblock();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A small picture, as PNG.
fn png_bytes() -> Vec<u8> {
    let picture =
        image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([x as u8 * 8, y as u8 * 10, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut bytes, image::ImageFormat::Png)
        .expect("a PNG");
    bytes.into_inner()
}
