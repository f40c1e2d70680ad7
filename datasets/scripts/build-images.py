#!/usr/bin/env python3
"""Build datasets/images/ (the one_click and grid challenges' pictures) from
the Twemoji PNGs in the npm package emoji-datasource-twitter.

Standard library and npm only:

    python3 datasets/scripts/build-images.py

The pinned package is fetched with `npm pack` into a temporary directory and
read from its tarball; nothing is installed. Each category below becomes
datasets/images/<id>/ holding its pictures as <short_name>.png, copied byte
for byte from img/twitter/64/; categories.tsv and README.md are written
beside them. The output is replaced whole, so running the script again
gives the same files (and removes a category dropped from the list).

Choosing categories: each is a concrete thing a person names at a glance,
and its pictures are ones a person would call by that noun. No category is
a kind of another (no "bird" beside "duck"), and pictures a person might
file under two nouns are left out altogether (tiger, wolf, panda, tomato,
whale, teddy bear...), so a grid never has a tile that is arguably the
target.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "emoji-datasource-twitter"
VERSION = "16.0.0"
IMAGE_DIR = "package/img/twitter/64/"

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "images"))

# id, English, German, French, Spanish (singular nouns, as in "Select every
# square showing: <noun>"), then the emoji short names that show it.
CATEGORIES = [
    ("cat", "cat", "Katze", "chat", "gato", ["cat", "cat2", "black_cat"]),
    ("dog", "dog", "Hund", "chien", "perro", ["dog", "dog2", "poodle"]),
    ("horse", "horse", "Pferd", "cheval", "caballo", ["horse", "racehorse"]),
    ("cow", "cow", "Kuh", "vache", "vaca", ["cow", "cow2"]),
    ("pig", "pig", "Schwein", "cochon", "cerdo", ["pig", "pig2"]),
    ("sheep", "sheep", "Schaf", "mouton", "oveja", ["sheep", "ram"]),
    ("rabbit", "rabbit", "Hase", "lapin", "conejo", ["rabbit", "rabbit2"]),
    ("mouse", "mouse", "Maus", "souris", "ratón", ["mouse"]),
    ("monkey", "monkey", "Affe", "singe", "mono", ["monkey_face", "monkey"]),
    ("elephant", "elephant", "Elefant", "éléphant", "elefante", ["elephant"]),
    ("bear", "bear", "Bär", "ours", "oso", ["bear", "polar_bear"]),
    ("lion", "lion", "Löwe", "lion", "león", ["lion_face"]),
    ("giraffe", "giraffe", "Giraffe", "girafe", "jirafa", ["giraffe_face"]),
    ("zebra", "zebra", "Zebra", "zèbre", "cebra", ["zebra_face"]),
    ("camel", "camel", "Kamel", "chameau", "camello", ["dromedary_camel", "camel"]),
    ("frog", "frog", "Frosch", "grenouille", "rana", ["frog"]),
    ("snake", "snake", "Schlange", "serpent", "serpiente", ["snake"]),
    ("turtle", "turtle", "Schildkröte", "tortue", "tortuga", ["turtle"]),
    ("fish", "fish", "Fisch", "poisson", "pez", ["fish", "tropical_fish", "blowfish"]),
    ("octopus", "octopus", "Krake", "pieuvre", "pulpo", ["octopus"]),
    ("crab", "crab", "Krabbe", "crabe", "cangrejo", ["crab"]),
    ("snail", "snail", "Schnecke", "escargot", "caracol", ["snail"]),
    ("butterfly", "butterfly", "Schmetterling", "papillon", "mariposa", ["butterfly"]),
    ("bee", "bee", "Biene", "abeille", "abeja", ["bee"]),
    ("penguin", "penguin", "Pinguin", "pingouin", "pingüino", ["penguin"]),
    ("duck", "duck", "Ente", "canard", "pato", ["duck"]),
    ("owl", "owl", "Eule", "hibou", "búho", ["owl"]),
    ("chicken", "chicken", "Huhn", "poule", "gallina", ["chicken", "rooster"]),
    ("apple", "apple", "Apfel", "pomme", "manzana", ["apple", "green_apple"]),
    ("banana", "banana", "Banane", "banane", "plátano", ["banana"]),
    ("grapes", "grapes", "Trauben", "raisin", "uvas", ["grapes"]),
    ("strawberry", "strawberry", "Erdbeere", "fraise", "fresa", ["strawberry"]),
    ("cherries", "cherries", "Kirschen", "cerises", "cerezas", ["cherries"]),
    ("pineapple", "pineapple", "Ananas", "ananas", "piña", ["pineapple"]),
    ("watermelon", "watermelon", "Wassermelone", "pastèque", "sandía", ["watermelon"]),
    ("lemon", "lemon", "Zitrone", "citron", "limón", ["lemon"]),
    ("carrot", "carrot", "Karotte", "carotte", "zanahoria", ["carrot"]),
    ("corn", "corn", "Mais", "maïs", "maíz", ["corn"]),
    ("mushroom", "mushroom", "Pilz", "champignon", "seta", ["mushroom"]),
    ("pizza", "pizza", "Pizza", "pizza", "pizza", ["pizza"]),
    ("cake", "cake", "Kuchen", "gâteau", "pastel", ["cake", "birthday"]),
    ("ice_cream", "ice cream", "Eis", "glace", "helado", ["ice_cream", "icecream"]),
    ("hamburger", "hamburger", "Hamburger", "hamburger", "hamburguesa", ["hamburger"]),
    ("car", "car", "Auto", "voiture", "coche", ["car", "blue_car"]),
    ("bus", "bus", "Bus", "bus", "autobús", ["bus"]),
    ("bicycle", "bicycle", "Fahrrad", "vélo", "bicicleta", ["bike"]),
    ("motorcycle", "motorcycle", "Motorrad", "moto", "moto", ["racing_motorcycle"]),
    ("train", "train", "Zug", "train", "tren", ["steam_locomotive", "train2", "bullettrain_side"]),
    ("airplane", "airplane", "Flugzeug", "avion", "avión", ["airplane", "small_airplane"]),
    ("helicopter", "helicopter", "Hubschrauber", "hélicoptère", "helicóptero", ["helicopter"]),
    ("rocket", "rocket", "Rakete", "fusée", "cohete", ["rocket"]),
    ("boat", "boat", "Boot", "bateau", "barco", ["boat", "speedboat"]),
    ("tractor", "tractor", "Traktor", "tracteur", "tractor", ["tractor"]),
    ("truck", "truck", "Lastwagen", "camion", "camión", ["truck", "articulated_lorry"]),
    ("house", "house", "Haus", "maison", "casa", ["house", "house_with_garden"]),
    ("tree", "tree", "Baum", "arbre", "árbol", ["deciduous_tree", "evergreen_tree", "palm_tree"]),
    ("flower", "flower", "Blume", "fleur", "flor", ["tulip", "sunflower", "hibiscus", "rose"]),
    ("cactus", "cactus", "Kaktus", "cactus", "cactus", ["cactus"]),
    ("umbrella", "umbrella", "Regenschirm", "parapluie", "paraguas", ["umbrella", "umbrella_with_rain_drops"]),
    ("clock", "clock", "Uhr", "horloge", "reloj", ["alarm_clock", "mantelpiece_clock", "clock3"]),
    ("key", "key", "Schlüssel", "clé", "llave", ["key", "old_key"]),
    ("guitar", "guitar", "Gitarre", "guitare", "guitarra", ["guitar"]),
    # French says "balle" for small balls, so only the big ones ("ballon").
    ("ball", "ball", "Ball", "ballon", "balón", ["soccer", "basketball"]),
    ("light_bulb", "light bulb", "Glühbirne", "ampoule", "bombilla", ["bulb"]),
    ("book", "book", "Buch", "livre", "libro", ["book", "closed_book", "green_book", "blue_book"]),
    ("glasses", "glasses", "Brille", "lunettes", "gafas", ["eyeglasses", "dark_sunglasses"]),
    ("hat", "hat", "Hut", "chapeau", "sombrero", ["tophat", "womans_hat"]),
    ("shoe", "shoe", "Schuh", "chaussure", "zapato", ["athletic_shoe", "mans_shoe"]),
    ("bell", "bell", "Glocke", "cloche", "campana", ["bell"]),
    ("anchor", "anchor", "Anker", "ancre", "ancla", ["anchor"]),
    ("hammer", "hammer", "Hammer", "marteau", "martillo", ["hammer"]),
    ("scissors", "scissors", "Schere", "ciseaux", "tijeras", ["scissors"]),
    ("snowman", "snowman", "Schneemann", "bonhomme de neige", "muñeco de nieve", ["snowman", "snowman_without_snow"]),
    ("sun", "sun", "Sonne", "soleil", "sol", ["sunny"]),
    ("moon", "moon", "Mond", "lune", "luna", ["crescent_moon"]),
    ("star", "star", "Stern", "étoile", "estrella", ["star"]),
    ("mountain", "mountain", "Berg", "montagne", "montaña", ["mountain", "snow_capped_mountain"]),
    ("telephone", "telephone", "Telefon", "téléphone", "teléfono", ["phone", "iphone"]),
    ("camera", "camera", "Kamera", "appareil photo", "cámara", ["camera", "camera_with_flash"]),
    ("gift", "gift", "Geschenk", "cadeau", "regalo", ["gift"]),
    ("pencil", "pencil", "Bleistift", "crayon", "lápiz", ["pencil2"]),
]

README = """\
# Pictures for the one_click and grid challenges

Loaded once at startup by `PictureSet::load` (`src/challenge/pictures/`):
every tile a challenge shows is one of these pictures, transformed afresh
for each render (rotation, scale, hue and brightness, clutter, noise, JPEG
re-encoding), so the files themselves are never served.

```
images/
  categories.tsv      id, then the noun in en, de, fr, es (header line)
  <id>/<name>.png     1-4 pictures of that category, 64x64 RGBA
```

{count} categories, {files} pictures.

## Source and licence

- **Graphics:** Twemoji, Copyright 2019 Twitter, Inc and other contributors
  (the jdecked/twemoji fork, v16.0.1), licensed under
  [CC-BY 4.0](https://creativecommons.org/licenses/by/4.0/). Attribution:
  "Twemoji graphics by Twitter, Inc and other contributors, CC-BY 4.0".
  Palisade changes them when it renders a tile (as listed above).
- **Taken from:** the npm package `{package}` {version}
  (`img/twitter/64/`), which bundles the Twemoji PNGs; the package's own
  code and data are MIT-licensed (Cal Henderson) and are not shipped here.
  Its `emoji.json` maps the short names used below to the files.

## How it was built

`python3 datasets/scripts/build-images.py` fetches the pinned package with
`npm pack` into a temporary directory, copies each category's pictures byte
for byte, and writes `categories.tsv` and this README. The script holds the
category list (ids, nouns, short names) and says how the categories were
chosen: concrete things named at a glance, none a kind of another, and no
picture a person might file under two nouns. Running it again reproduces
these files.
"""


def fetch_package(tmp):
    subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return os.path.join(tmp, f"{PACKAGE}-{VERSION}.tgz")


def main():
    ids = [c[0] for c in CATEGORIES]
    if len(set(ids)) != len(ids):
        sys.exit("duplicate category id")
    with tempfile.TemporaryDirectory() as tmp:
        tarball = fetch_package(tmp)
        with tarfile.open(tarball) as tar:
            emoji = json.load(tar.extractfile("package/emoji.json"))
            by_name = {}
            for entry in emoji:
                for name in entry["short_names"]:
                    by_name[name] = entry
            staging = os.path.join(tmp, "images")
            os.makedirs(staging)
            files = 0
            used = {}
            for cid, *_nouns, names in CATEGORIES:
                os.makedirs(os.path.join(staging, cid))
                for name in names:
                    entry = by_name.get(name)
                    if entry is None or not entry.get("has_img_twitter"):
                        sys.exit(f"{cid}: no Twitter image for short name {name!r}")
                    if entry["image"] in used:
                        sys.exit(f"{cid}: {name!r} is already in {used[entry['image']]}")
                    used[entry["image"]] = cid
                    data = tar.extractfile(IMAGE_DIR + entry["image"]).read()
                    with open(os.path.join(staging, cid, name + ".png"), "wb") as f:
                        f.write(data)
                    files += 1
        with open(os.path.join(staging, "categories.tsv"), "w", encoding="utf-8") as f:
            f.write("id\ten\tde\tfr\tes\n")
            for cid, en, de, fr, es, _names in CATEGORIES:
                f.write(f"{cid}\t{en}\t{de}\t{fr}\t{es}\n")
        with open(os.path.join(staging, "README.md"), "w", encoding="utf-8") as f:
            f.write(
                README.format(
                    count=len(CATEGORIES), files=files, package=PACKAGE, version=VERSION
                )
            )
        if os.path.exists(OUT):
            shutil.rmtree(OUT)
        shutil.copytree(staging, OUT)
    print(f"{len(CATEGORIES)} categories, {files} pictures -> {OUT}")


if __name__ == "__main__":
    main()
