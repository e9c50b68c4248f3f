fn main() {
    println!("rbt: not yet wired");
}
