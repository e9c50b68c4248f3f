fn main() {
    let path = std::env::args().nth(1).unwrap();
    let src = std::fs::read_to_string(&path).unwrap();
    match rbt::parser::parse(&src) {
        Ok(p) => print!("{}", rbt::parser::dump(&p)),
        Err(d) => print!("{}", rbt::diag::render(&path, &src, &d)),
    }
}
