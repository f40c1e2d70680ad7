//! Reading `datasets/images/`: the category table and each category's
//! pictures, decoded once into premultiplied RGBA.

use std::path::Path;

use crate::challenge::{DatasetError, Lang};

/// The largest picture accepted, per side (the shipped ones are 64 px).
const MAX_PICTURE_SIDE: u32 = 256;

/// One decoded picture: premultiplied RGBA, row by row.
#[derive(Debug, Clone)]
pub struct Sprite {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<[u8; 4]>,
}

/// A category: its noun in every language, and its pictures.
#[derive(Debug, Clone)]
pub struct Category {
    /// Indexed like `Lang::ALL`.
    pub nouns: [String; 4],
    pub pictures: Vec<Sprite>,
}

/// Reads `images_dir/categories.tsv` and each category's directory.
pub fn load(images_dir: &Path) -> Result<Vec<Category>, DatasetError> {
    let table_path = images_dir.join("categories.tsv");
    let table = std::fs::read_to_string(&table_path)
        .map_err(|e| DatasetError::new(table_path.display(), format!("cannot read: {e}")))?;
    let rows = parse_table(&table).map_err(|e| DatasetError::new(table_path.display(), e))?;
    if rows.len() < 2 {
        return Err(DatasetError::new(
            table_path.display(),
            "needs at least two categories (a target and a distractor)",
        ));
    }
    if rows.len() > usize::from(u16::MAX) {
        return Err(DatasetError::new(
            table_path.display(),
            "more than 65535 categories",
        ));
    }
    rows.into_iter()
        .map(|(id, nouns)| {
            let pictures = load_pictures(&images_dir.join(&id))?;
            Ok(Category { nouns, pictures })
        })
        .collect()
}

/// The rows of `categories.tsv`: a header `id` then the four language codes
/// (in any order), then one line per category.
fn parse_table(text: &str) -> Result<Vec<(String, [String; 4])>, String> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or("empty file")?;
    let columns: Vec<&str> = header.split('\t').collect();
    if columns.first() != Some(&"id") {
        return Err("line 1: the header must start with the column `id`".into());
    }
    // For each language, the column holding its noun.
    let mut column_of = [0usize; 4];
    for (i, lang) in Lang::ALL.into_iter().enumerate() {
        let found: Vec<usize> = (1..columns.len())
            .filter(|&c| columns[c] == lang.code())
            .collect();
        match found.as_slice() {
            [c] => column_of[i] = *c,
            [] => return Err(format!("line 1: no column `{}`", lang.code())),
            _ => return Err(format!("line 1: column `{}` appears twice", lang.code())),
        }
    }
    let mut rows: Vec<(String, [String; 4])> = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != columns.len() {
            return Err(format!(
                "line {number}: {} columns, the header has {}",
                fields.len(),
                columns.len()
            ));
        }
        let id = fields[0];
        // The id names a directory: keep it to a plain name.
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!("line {number}: id {id:?} is not [a-z0-9_]+"));
        }
        if rows.iter().any(|(other, _)| other == id) {
            return Err(format!("line {number}: id {id:?} appears twice"));
        }
        let nouns = column_of.map(|c| fields[c].trim().to_string());
        if let Some(i) = nouns.iter().position(String::is_empty) {
            return Err(format!("line {number}: no {} noun", Lang::ALL[i].code()));
        }
        rows.push((id.to_string(), nouns));
    }
    Ok(rows)
}

/// The `*.png` files of a category's directory, in name order.
fn load_pictures(dir: &Path) -> Result<Vec<Sprite>, DatasetError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DatasetError::new(dir.display(), format!("cannot read: {e}")))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| DatasetError::new(dir.display(), format!("cannot read: {e}")))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "png") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(DatasetError::new(dir.display(), "no .png pictures"));
    }
    if paths.len() > usize::from(u16::MAX) {
        return Err(DatasetError::new(dir.display(), "more than 65535 pictures"));
    }
    paths.iter().map(|path| load_sprite(path)).collect()
}

fn load_sprite(path: &Path) -> Result<Sprite, DatasetError> {
    let bytes = std::fs::read(path)
        .map_err(|e| DatasetError::new(path.display(), format!("cannot read: {e}")))?;
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| DatasetError::new(path.display(), format!("not a PNG picture: {e}")))?
        .to_rgba8();
    let (width, height) = image.dimensions();
    if width > MAX_PICTURE_SIDE || height > MAX_PICTURE_SIDE {
        return Err(DatasetError::new(
            path.display(),
            format!("{width}x{height} is larger than {MAX_PICTURE_SIDE}x{MAX_PICTURE_SIDE}"),
        ));
    }
    let pixels = image
        .pixels()
        .map(|p| {
            let [r, g, b, a] = p.0;
            let premultiply = |c: u8| ((u16::from(c) * u16::from(a) + 127) / 255) as u8;
            [premultiply(r), premultiply(g), premultiply(b), a]
        })
        .collect();
    Ok(Sprite {
        width,
        height,
        pixels,
    })
}
