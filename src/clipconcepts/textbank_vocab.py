"""Vocabularies of the project's default text bank (written for clipconcepts).

One ``FamilyVocab`` per concept family. Each family has groups of items, each group with its
phrasing templates; ``clipconcepts.textbank`` composes descriptions from them and builds the
keyword lexicon from the items and keywords. Template placeholders:

* ``{x}``: the item as written; ``{a}``: the item with its indefinite article ("an owl");
* ``{y}``: a filler from the group's ``fillers`` (e.g. the object a colour is shown on).

Items of one family must not appear as items or keywords of another family (a test checks), so
the lexicon maps every term to exactly one family.
"""

from __future__ import annotations

from dataclasses import dataclass


def _split(text: str) -> tuple[str, ...]:
    """Comma-separated vocabulary -> tuple of stripped, non-empty terms."""
    return tuple(term.strip() for term in text.replace("\n", " ").split(",") if term.strip())


@dataclass(frozen=True)
class Group:
    """Items sharing phrasing templates. ``countable``: items take plural forms in the lexicon."""

    items: tuple[str, ...]
    templates: tuple[str, ...]
    fillers: tuple[str, ...] = ()
    countable: bool = False
    # Items that are not concept words (e.g. the words written on signs): not in the lexicon.
    lexicon: bool = True


@dataclass(frozen=True)
class FamilyVocab:
    name: str
    groups: tuple[Group, ...]
    extras: tuple[str, ...] = ()  # hand-written full descriptions
    keywords: tuple[str, ...] = ()  # generic words of the family, for the lexicon only


PEOPLE = FamilyVocab(
    "people",
    groups=(
        Group(
            _split("""man, woman, boy, girl, baby, toddler, child, teenager, young woman,
            young man, elderly man, elderly woman, old man, old woman, young person, person,
            bride, groom, couple, family, crowd, group of friends, mother, father, grandmother,
            grandfather, newborn, schoolgirl, schoolboy, twin, stranger, tourist, pedestrian,
            commuter, passenger, hiker, shopper, neighbor, teenage girl, teenage boy, gentleman,
            lady, elderly couple, young couple, little girl, little boy"""),
            (
                "a photo of {a}",
                "image with {a}",
                "portrait of {a}",
                "{a} smiling at the camera",
                "{a} walking down a street",
                "candid photo of {a}",
                "{a} sitting on a bench",
            ),
            countable=True,
        ),
    ),
    extras=_split("""Image with two people, Image with three people, A large crowd of people,
    Playful siblings, A happy family portrait, Friends laughing together,
    Children playing in a park, An elderly couple holding hands, People waiting at a bus stop,
    A group selfie of friends, Students sitting in a lecture hall, A mother holding her baby,
    A father carrying his son, Grandparents with their grandchildren, Teenagers hanging out,
    A person reading on a train, Twins in matching outfits, Two women talking over tea"""),
    keywords=_split("""people, men, women, children, kids, kid, human, humans, persons,
    siblings, friends, toddlers, babies, grandparents, teenagers, adults, adult, youth, elderly,
    grandchildren, student, students"""),
)

ANIMALS = FamilyVocab(
    "animals",
    groups=(
        Group(
            _split("""dog, cat, horse, cow, sheep, goat, pig, donkey, rabbit, hamster, parrot,
            eagle, owl, penguin, flamingo, swan, duck, chicken, peacock, hummingbird, lion,
            tiger, leopard, cheetah, elephant, giraffe, zebra, rhinoceros, hippopotamus, gorilla,
            chimpanzee, kangaroo, koala, panda, polar bear, brown bear, wolf, fox, deer, moose,
            camel, squirrel, hedgehog, raccoon, bat, dolphin, whale, shark, octopus, jellyfish,
            sea turtle, crab, goldfish, frog, snake, lizard, crocodile, butterfly, bee, ladybug,
            spider, snail, golden retriever, prairie grouse, seal, otter, beaver, llama, bison,
            puppy, kitten, pony, tortoise, iguana, toucan, pelican, seagull, crow"""),
            (
                "a photo of {a}",
                "image with {a}",
                "image showing {a}",
                "close-up of {a}",
                "wildlife photo of {a}",
                "{a} looking at the camera",
            ),
            countable=True,
        ),
    ),
    extras=_split("""Majestic animal, detailed reptile close-up, A flock of birds flying,
    A herd of cattle grazing, A school of tropical fish, Two puppies playing, A kitten asleep on
    a sofa, A lioness with her cubs, A bird perched on a branch, Horses running in a field,
    A farm with many animals, A pet dog on a leash, Ducks swimming in a pond,
    A butterfly on a flower"""),
    keywords=_split("""animal, animals, pet, pets, wildlife, bird, birds, fish, insect, insects,
    reptile, reptiles, mammal, mammals, cattle, cubs, lioness, puppies, kittens, fur, paws, paw,
    beak, feathers, creature, creatures, zoo, herd, flock"""),
)

NATURE = FamilyVocab(
    "nature",
    groups=(
        Group(
            _split("""waterfall, forest, mountain range, river, lake, canyon, desert, glacier,
            volcano, cliff, valley, meadow, beach, coral reef, rainforest, cave, island,
            sand dune, hill, pond, stream, swamp, savanna, oasis, geyser, fjord, lagoon,
            coastline, prairie, bamboo grove, pine tree, oak tree, palm tree, wildflower field,
            sunflower field, fern, moss-covered rock, cactus, tulip, daisy, lotus flower, orchid,
            cherry tree, tree branch, rock formation, starry sky, ocean wave, rose, birch forest,
            mountain peak, riverbank, hot spring, grassy hillside, marsh"""),
            (
                "a photo of {a}",
                "image with {a}",
                "a quiet {x}",
                "landscape with {a}",
                "a wide view of {a}",
                "{a} in nature",
            ),
            countable=True,
        ),
    ),
    extras=_split("""Intertwined tree branches, Flowing water bodies, A meadow, A smoky plume,
    Awe-inspiring sky, Lush green vegetation, Dense jungle foliage, Wild grass swaying,
    Fallen leaves on the forest floor, Rolling green hills, A calm lake reflecting mountains,
    Waves crashing on rocks, A field of wildflowers, Roots of an ancient tree"""),
    keywords=_split("""nature, natural, tree, trees, flower, flowers, plant, plants, landscape,
    grass, leaves, leaf, water, vegetation, foliage, jungle, woods, wilderness, outdoors,
    mountains, mountain, hills, ocean, sea, sky, rocks, rock, roots, blooms, scenery, plume,
    wildflowers, waves"""),
)

LOCATIONS = FamilyVocab(
    "locations",
    groups=(
        Group(
            _split("""France, Italy, Spain, Portugal, Germany, Greece, Norway, Iceland, Ireland,
            Scotland, Switzerland, Austria, Poland, Croatia, Turkey, Egypt, Morocco, Kenya,
            Tanzania, South Africa, Madagascar, Nigeria, Ethiopia, India, Nepal, China, Japan,
            South Korea, Vietnam, Thailand, Indonesia, the Philippines, Australia, New Zealand,
            Fiji, Andorra, Canada, Mexico, Cuba, Peru, Brazil, Argentina, Chile, Colombia,
            Bolivia, Mongolia, Jordan, Iran, Russia, Finland, Sweden, Denmark, the Netherlands,
            Belgium, Hungary, Romania, Georgia, Sri Lanka, Cambodia, Laos"""),
            (
                "an image of {x}",
                "photo taken in {x}",
                "a street in {x}",
                "a village in {x}",
                "the countryside of {x}",
            ),
        ),
        Group(
            _split("""Paris, London, Rome, Venice, Barcelona, Madrid, Lisbon, Berlin, Amsterdam,
            Prague, Vienna, Budapest, Istanbul, Athens, Dubai, Cairo, Marrakesh, Cape Town,
            Nairobi, Mumbai, Delhi, Bangkok, Singapore, Hong Kong, Shanghai, Beijing, Tokyo,
            Kyoto, Seoul, Sydney, Melbourne, New York, San Francisco, Los Angeles, Chicago,
            Las Vegas, New Orleans, Toronto, Vancouver, Mexico City, Havana, Rio de Janeiro,
            Buenos Aires, Lima, Moscow, Saint Petersburg, Stockholm, Copenhagen, Oslo, Dublin,
            Edinburgh, Florence, Naples, Seville, Jerusalem, Hanoi, Kathmandu"""),
            (
                "photo taken in {x}",
                "the skyline of {x}",
                "a street in {x}",
                "a view of {x}",
                "a market in {x}",
            ),
        ),
        Group(
            _split("""the Eiffel Tower, the Colosseum, the Great Wall of China, the Taj Mahal,
            Machu Picchu, the Statue of Liberty, the Golden Gate Bridge, Big Ben,
            the Sydney Opera House, Mount Fuji, the Grand Canyon, Monument Valley,
            Niagara Falls, the Pyramids of Giza, Stonehenge, Angkor Wat, the Acropolis,
            Petra, Times Square, the Leaning Tower of Pisa, Christ the Redeemer,
            the Sagrada Familia, Mount Everest, the Amazon River, the Sahara Desert,
            Uluru, Table Mountain, the Brandenburg Gate, Red Square, Santorini,
            the Alps, the Dolomites, Yosemite, Lake Como, Ha Long Bay"""),
            ("photo taken at {x}", "a photo of {x}", "tourists visiting {x}"),
        ),
    ),
    extras=_split("""Photo taken in Monument Valley, An image of Andorra, A famous landmark,
    A map of Europe, A postcard from a foreign country, A busy city square abroad,
    A tourist destination, A small town on the coast"""),
    keywords=_split("""location, locations, country, countries, city, cities, town, landmark,
    landmarks, place, places, travel, tourism, destination, capital, continent, europe, asia,
    africa, america, abroad, skyline, map, region, province, nation"""),
)

COLORS = FamilyVocab(
    "colors",
    groups=(
        Group(
            _split("""red, blue, green, yellow, orange, purple, pink, brown, black, white,
            gray, golden, turquoise, teal, navy blue, maroon, beige, lavender, magenta, cyan,
            crimson, olive green, mint green, burgundy, indigo, violet, scarlet, emerald green,
            sky blue, lime green, cream, bright yellow, dark red, pale pink"""),
            (
                "the color {x}",
                "{a} {y}",
                "{a} background",
                "shades of {x}",
                "a bright {x} {y}",
                "everything painted {x}",
            ),
            fillers=_split("""car, dress, door, wall, umbrella, balloon, shirt, house, bicycle,
            chair, sports jacket, front gate, flag, mug, teapot"""),
        ),
    ),
    extras=_split("""Vibrant colors, A pastel color palette, A rainbow of paint swatches,
    A colorful market stall, Muted earth tones, Bold primary colors, Neon colors,
    A monochrome red scene, A color wheel, Splashes of bright color"""),
    keywords=_split("""color, colors, colour, colours, colorful, colourful, hue, hues,
    palette, shades, tones, pastel, vibrant, monochrome, paint, swatches"""),
)

TEXTURES = FamilyVocab(
    "textures",
    groups=(
        Group(
            _split("""rough, smooth, fluffy, furry, bumpy, wrinkled, cracked, grainy, glossy,
            matte, velvety, silky, fuzzy, spiky, scaly, coarse, porous, rippled, knitted, woven,
            corrugated, weathered, rusty, mossy, crumpled, polished, slimy, feathery, leathery,
            prickly, ribbed, pebbled, frosted, peeling, jagged, lumpy, waxy, quilted, embossed,
            sandy, hairy, shaggy, gritty, spongy"""),
            (
                "{a} texture",
                "close-up of {a} surface",
                "image with {a} texture",
                "macro photo of {a} {y}",
            ),
            fillers=_split("""wall, surface, fabric, stone, leaf, sweater, tree trunk, rock,
            blanket, floor"""),
        ),
    ),
    extras=_split("""Photo of a furry animal texture, Closeup of textured synthetic fabric,
    Image with woven fabric design, Tactile surface details, Peeling paint on an old wall,
    Cracked dry earth, Bark texture close-up, Soft fleece texture"""),
    keywords=_split("""texture, textures, textured, surface, surfaces, tactile, bark, fleece,
    fabric, coating"""),
)

MATERIALS = FamilyVocab(
    "materials",
    groups=(
        Group(
            _split("""wood, metal, glass, plastic, stone, marble, granite, concrete, brick,
            steel, iron, copper, bronze, gold, silver, aluminum, ceramic, porcelain, clay,
            leather, wool, cotton, silk, linen, denim, velvet, paper, cardboard, rubber, bamboo,
            wicker, cork, felt, lace, canvas, crystal, ivory, amber, terracotta, fiberglass,
            carbon fiber, resin, wax, foam, nylon, sandstone, slate, tin, plywood, chrome"""),
            (
                "an object made of {x}",
                "a {y} made of {x}",
                "image with {x} material",
                "intricate {x} work",
                "a close-up of {x}",
            ),
            fillers=_split("""table, bowl, chair, vase, box, statue, cup, lamp, sculpture,
            bench"""),
        ),
    ),
    extras=_split("""Intricate wood carving, Image with shattered glass reflections,
    A pile of raw materials, Stacked timber planks, Sheets of corrugated metal,
    Handmade pottery on a shelf, Rolls of cotton fabric, Building materials at a site"""),
    keywords=_split("""material, materials, made of, timber, planks, pottery, metallic,
    wooden, glassy, stone-like, raw material, fibers, thread, yarn"""),
)

OBJECTS = FamilyVocab(
    "objects",
    groups=(
        Group(
            _split("""chair, table, lamp, clock, book, cup, mug, bottle, vase, umbrella,
            backpack, suitcase, key, pencil, pen, notebook, laptop, smartphone, television,
            remote control, teapot, kettle, frying pan, knife, fork, spoon, plate, bowl, basket,
            candle, mirror, pillow, blanket, toothbrush, hammer, screwdriver, ladder, bucket,
            broom, watch, wallet, handbag, teddy bear, kite, globe, trophy, hairbrush, lightbulb,
            padlock, alarm clock, keyboard, stapler, wine glass, water bottle, coffee maker,
            toaster, sewing machine, typewriter, rubber duck"""),
            (
                "a photo of {a}",
                "image with {a}",
                "{a} on a table",
                "a close-up of {a}",
                "an old {x}",
                "{a} on a white background",
                "a product photo of {a}",
            ),
            countable=True,
        ),
    ),
    extras=_split("""Everyday household items, A cluttered desk, Tools hanging on a wall,
    A shelf full of objects, Office supplies, Kitchen utensils in a drawer,
    A collection of antique objects, Items spread out on the floor"""),
    keywords=_split("""object, objects, item, items, tool, tools, furniture, household,
    utensils, desk, gadget, gadgets, device, devices, appliance, supplies, belongings"""),
)

_ALPHABET = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
LETTERS = FamilyVocab(
    "letters",
    groups=(
        Group(
            _ALPHABET,
            (
                "a photo with the letter {x}",
                "the letter {x} in bold type",
                "a handwritten letter {x}",
                "a neon sign shaped like the letter {x}",
                "a wooden block with the letter {x}",
                "a capital letter {x}",
            ),
            lexicon=False,  # single letters would match articles such as "a"
        ),
        Group(
            _split("""STOP, OPEN, EXIT, WELCOME, SALE, LOVE, HELLO, CAFE, HOTEL, DANGER, HOME,
            DREAM, PEACE, FREE, NEWS, PARKING, THANK YOU, BAKERY, PHARMACY, NO ENTRY"""),
            (
                "a sign that says {x}",
                "the word {x} written on a wall",
                "the word {x} in large letters",
            ),
            lexicon=False,
        ),
        Group(
            _split("""street sign with text, page of printed text, newspaper headline,
            handwritten note, graffiti lettering, typewritten letter, book page, license plate,
            menu board, shop sign, poster with large text, chalkboard with writing,
            billboard with slogans, calligraphy scroll, alphabet chart, crossword puzzle,
            road sign, name tag, handwritten signature"""),
            ("a photo of {a}", "image with {a}", "close-up of {a}"),
            countable=True,
        ),
    ),
    extras=_split("""Chinese characters on a banner, Arabic script, Cyrillic letters on a sign,
    Subtitles on a screen, Text on a computer screen, Letters of the alphabet, Scrabble tiles
    spelling a word, Embossed lettering, A page of handwriting, Japanese writing on a lantern,
    Bold typography, A font specimen"""),
    keywords=_split("""letter, letters, text, word, words, alphabet, typography, font, fonts,
    writing, handwriting, handwritten, written, lettering, calligraphy, script, characters,
    sign, signs, says, spelling, printed, headline, caption, subtitles, inscription, slogan"""),
)

BODY_PARTS = FamilyVocab(
    "body parts",
    groups=(
        Group(
            _split("""hand, foot, eye, ear, nose, mouth, leg, arm, finger, thumb, knee, elbow,
            shoulder, neck, face, forehead, chin, cheek, eyebrow, beard, mustache, tongue,
            wrist, ankle, toe, palm, fingernail, belly, skull, hip, fist, spine, jaw, heel,
            rib cage"""),
            (
                "{a}",
                "close-up of {a}",
                "a photo of a human {x}",
                "detailed shot of a person's {x}",
                "an anatomical drawing of the human {x}",
            ),
            countable=True,
        ),
        Group(
            _split("""hair, teeth, lips, eyelashes, freckles, knuckles, toes, fingers, curly
            hair, bare feet, muscles"""),
            ("close-up of {x}", "image of human {x}", "a photo showing {x}"),
        ),
    ),
    extras=_split("""A leg, Two hands touching, A hand holding a pen, Tattooed arm,
    An X-ray of a hand, Footprints of bare feet, A raised hand, Hands clasped together,
    Crossed arms"""),
    keywords=_split("""body, body part, body parts, anatomy, anatomical, limb, limbs, hands,
    feet, eyes, ears, legs, arms, skin, skeleton, bones, bone, organ, torso, tattooed, x-ray"""),
)

PROFESSIONS = FamilyVocab(
    "professions",
    groups=(
        Group(
            _split("""doctor, nurse, firefighter, police officer, chef, baker, farmer, teacher,
            scientist, astronaut, pilot, soldier, construction worker, carpenter, plumber,
            electrician, mechanic, photographer, dancer, lawyer, judge, businessman,
            businesswoman, waiter, barista, cashier, librarian, veterinarian, dentist, surgeon,
            fisherman, lifeguard, mail carrier, taxi driver, gardener, tailor, blacksmith,
            engineer, programmer, journalist, news anchor, barber, hairdresser, butcher,
            animal trainer, zookeeper, miner, welder, sailor, referee, clown, magician, priest,
            monk, security guard, delivery driver, receptionist, florist, shepherd, cowboy,
            architect, painter, potter, cook"""),
            (
                "an image of {a}",
                "a photo of {a} at work",
                "{a} in uniform",
                "portrait of {a}",
                "{a} doing their job",
            ),
            countable=True,
        ),
    ),
    extras=_split("""An image of an Animal Trainer, Workers at a factory, A team of surgeons
    operating, A busy restaurant kitchen staff, Office workers in a meeting, A doctor examining a
    patient, Firefighters putting out a fire, A craftsman in his workshop"""),
    keywords=_split("""profession, professions, job, jobs, occupation, worker, workers, career,
    uniform, workplace, employee, employees, staff, craftsman, workshop, office, factory,
    colleague, coworkers"""),
)

FOOD = FamilyVocab(
    "food",
    groups=(
        Group(
            _split("""pizza, sushi, pasta, spaghetti, ramen, hamburgers, french fries, tacos,
            burritos, dumplings, croissants, bagels, pancakes, waffles, donuts, cupcakes,
            chocolate cake, cheesecake, ice cream, cookies, bread, cheese, salad, soup, curry,
            fried rice, steak, roast chicken, salmon, shrimp, oysters, eggs, bacon, sausages,
            sandwiches, hot dogs, popcorn, apples, bananas, strawberries, grapes, watermelon,
            pineapple, cherries, lemons, avocados, tomatoes, carrots, broccoli, mushrooms, corn,
            potatoes, noodles, paella, tiramisu, macarons, baklava, falafel, hummus, kebabs,
            pho, dim sum, tangerines, peaches, honey, pastries, lasagna, omelette"""),
            (
                "a photo of {x}, a type of food",
                "a plate of {x}",
                "fresh {x}",
                "homemade {x}",
                "{x} on a wooden table",
                "close-up of delicious {x}",
            ),
        ),
    ),
    extras=_split("""A photo of food, Photo taken in an Italian pizzeria, A breakfast table,
    A street food stall, A buffet of dishes, A bowl of fruit, Vegetables at a farmers market,
    A chef plating a dish, Freshly baked goods, A picnic spread"""),
    keywords=_split("""food, foods, meal, meals, dish, dishes, dinner, lunch, breakfast,
    dessert, desserts, fruit, fruits, vegetable, vegetables, snack, snacks, cuisine, cooking,
    baked, delicious, tasty, eating, recipe, pizzeria, buffet, picnic, groceries"""),
)

VEHICLES = FamilyVocab(
    "vehicles",
    groups=(
        Group(
            _split("""car, sports car, truck, bus, school bus, motorcycle, bicycle, scooter,
            train, subway train, tram, airplane, helicopter, hot air balloon, sailboat, yacht,
            canoe, kayak, ferry, cruise ship, submarine, tractor, ambulance, fire truck,
            police car, taxi, van, pickup truck, jeep, limousine, race car, vintage car, rocket,
            spaceship, cable car, horse carriage, rickshaw, snowmobile, jet ski, fighter jet,
            cargo ship, forklift, bulldozer, excavator, camper van, steam locomotive, minivan,
            motorboat, tandem bicycle, double-decker bus"""),
            (
                "a picture of {a}",
                "image with {a}",
                "{a} in motion",
                "an old {x}",
                "a toy {x}",
                "a side view of {a}",
            ),
            countable=True,
        ),
    ),
    extras=_split("""Heavy traffic on a highway, A parking lot full of cars, A busy train
    station platform, Boats moored in a harbor, Planes at an airport gate, A traffic jam at
    rush hour, Vintage cars on display"""),
    keywords=_split("""vehicle, vehicles, transport, transportation, traffic, cars, driving,
    wheels, boat, boats, ship, plane, planes, aircraft, highway, harbor, airport, railway,
    engine, parking lot"""),
)

ART_STYLES = FamilyVocab(
    "art styles",
    groups=(
        Group(
            _split("""impressionism, cubism, surrealism, pop art, art nouveau, art deco, baroque,
            renaissance art, abstract expressionism, minimalism, pointillism, expressionism,
            romanticism, fauvism, dadaism, futurism, ukiyo-e, vaporwave, steampunk, gothic art,
            folk art, street art, anime, manga, byzantine art, cyberpunk, art brut, constructivism"""),
            (
                "a painting in the style of {x}",
                "{x} artwork",
                "an artwork inspired by {x}",
                "a landscape in {x} style",
                "a portrait in {x} style",
            ),
        ),
        Group(
            _split("""watercolor painting, oil painting, charcoal drawing, pencil sketch,
            ink drawing, woodblock print, pixel art illustration, digital illustration, mosaic,
            stained glass window, collage, fresco, comic strip, cartoon drawing, caricature,
            line drawing, 3D render, linocut, pastel drawing, acrylic painting, chinese ink
            painting, sculpture, mural"""),
            ("{a} of a {y}", "an example of {a}", "{a}"),
            fillers=_split("""landscape, city, woman, cat, flower vase, harbor, horse,
            still life, village, dancer"""),
            countable=True,
        ),
    ),
    extras=_split("""A museum gallery wall of paintings, An abstract painting with bold
    strokes, A classical marble statue, A surreal dreamlike artwork, Brushstrokes on canvas,
    A sketchbook page"""),
    keywords=_split("""art, artwork, artworks, painting, paintings, drawing, drawings, sketch,
    illustration, artistic, painted, gallery, museum, abstract, surreal, brushstrokes,
    sketchbook, masterpiece, statue, classical"""),
)

LIGHTING = FamilyVocab(
    "lighting",
    groups=(
        Group(
            _split("""candlelight, moonlight, sunlight, neon light, firelight, lantern light,
            lamplight, torchlight, starlight, fluorescent light, LED light, a spotlight,
            stage lighting, studio lighting, soft light, warm light, cool blue light,
            harsh light, diffused light, dappled light, golden hour light, morning light,
            evening light, backlighting, rim lighting, dim light, dramatic lighting,
            low-key lighting, colored lights, fairy lights, light beams, sunbeams, laser beams,
            a flashlight beam, glowing embers, bioluminescent glow, street lamps, ring light"""),
            (
                "a scene lit by {x}",
                "image with {x}",
                "{x} in a dark room",
                "a portrait with {x}",
                "a room bathed in {x}",
            ),
        ),
    ),
    extras=_split("""Nighttime illumination, A silhouette against a bright window, Long shadows
    at sunset, Harsh shadows on a wall, Play of light and shadow, Reflections of light on water,
    A dark scene with a single light source, Light streaming through a window,
    A glowing lamp in the darkness"""),
    keywords=_split("""light, lights, lighting, lit, illumination, illuminated, glow, glowing,
    shadow, shadows, silhouette, backlit, darkness, dark, bright, brightness, beams, shine,
    shining"""),
)

_NUMBER_WORDS = _split("""zero, one, two, three, four, five, six, seven, eight, nine, ten,
eleven, twelve, thirteen, fourteen, fifteen, sixteen, seventeen, eighteen, nineteen, twenty,
thirty, forty, fifty, hundred, thousand""")
NUMBERS = FamilyVocab(
    "numbers",
    groups=(
        Group(
            tuple(str(n) for n in (*range(0, 21), 25, 30, 42, 50, 64, 75, 99, 100, 500, 1000)),
            (
                "the number {x}",
                "a sign with the number {x}",
                "the digit {x} painted on a wall",
                "a jersey with the number {x}",
                "a house number {x}",
            ),
        ),
        Group(
            _NUMBER_WORDS[2:13],
            (
                "{x} objects arranged in a row",
                "a clock showing {x} o'clock",
                "a group of {x} {y}",
                "the word {x} written out",
            ),
            fillers=_split("""balloons, candles, stones, coins, cups, dots, blocks, marbles"""),
        ),
    ),
    extras=_split("""A countdown timer, A page of numbers, Digits on a calculator display,
    Numbers on a scoreboard, A math equation on a chalkboard, Counting on fingers,
    Roman numerals on a clock face, A lottery ticket with numbers"""),
    keywords=(
        *_NUMBER_WORDS,
        *(str(n) for n in range(0, 101)),
        *_split("""number, numbers, digit, digits, numeral, numerals, counting, count, dozen,
        pair, math, equation, calculator, countdown, o'clock, million"""),
    ),
)

EMOTIONS = FamilyVocab(
    "emotions",
    groups=(
        Group(
            _split("""happy, sad, angry, surprised, scared, excited, calm, joyful, anxious,
            lonely, proud, bored, confused, disgusted, embarrassed, grateful, hopeful, nervous,
            peaceful, melancholic, cheerful, furious, shocked, tearful, relaxed, contemplative,
            loving, jealous, frustrated, amused, terrified, delighted, heartbroken, serene"""),
            (
                "{a} person",
                "{a} facial expression",
                "someone feeling {x}",
                "{a} mood",
                "{a} child",
            ),
        ),
        Group(
            _split("""happiness, sadness, anger, fear, joy, surprise, love, grief, loneliness,
            excitement, nostalgia, serenity, anxiety, laughter, despair, hope, affection"""),
            ("an image expressing {x}", "a scene full of {x}", "a face showing {x}"),
        ),
    ),
    extras=_split("""A person crying, A child laughing, A warm hug between friends, Tears of joy,
    A frowning face, A nervous smile, Contemplative monochrome portrait,
    A joyful moment with arms raised"""),
    keywords=_split("""emotion, emotions, emotional, feeling, feelings, mood, expression,
    smile, smiling, crying, laughing, frowning, tears, hug, sorrow, upset, glad"""),
)

WEATHER = FamilyVocab(
    "weather",
    groups=(
        Group(
            _split("""rain, heavy rain, snow, snowfall, fog, mist, a thunderstorm, lightning,
            hail, sleet, drizzle, a blizzard, a tornado, a hurricane, a sandstorm, a rainbow,
            storm clouds, an overcast sky, a clear blue sky, sunshine, a heat wave, frost, dew,
            an ice storm, strong wind, monsoon rain, haze, smog, puddles, snowflakes, icicles,
            dark clouds, freezing rain"""),
            (
                "image of {x}",
                "{x} over the city",
                "a landscape in {x}",
                "a road in {x}",
                "weather photo of {x}",
            ),
        ),
    ),
    extras=_split("""A rainy day, A stormy sea, A foggy morning, A snowy street, Clouds gathering
    before a storm, Raindrops on a window, Wind bending the trees, A sunny afternoon"""),
    keywords=_split("""weather, rainy, snowy, foggy, stormy, cloudy, sunny, windy, misty,
    storm, storms, clouds, cloud, raindrops, climate, forecast, thunder, humid, wet, freezing,
    snowstorm, wind"""),
)

SEASONS = FamilyVocab(
    "seasons",
    groups=(
        Group(
            _split("spring, summer, autumn, winter"),
            (
                "{x} in the {y}",
                "{a} day in the {y}",
                "the {y} in {x}",
                "{x} scenery in the {y}",
            ),
            fillers=_split("""forest, park, city, village, countryside, mountains, garden, lake,
            orchard, vineyard, backyard, farm, suburbs, old town, harbor town"""),
        ),
        Group(
            _split("""autumn leaves, fall foliage, spring blossoms, a summer vacation,
            a winter wonderland, the harvest season, the first snow of winter,
            cherry blossom season, summer heat, an autumn harvest, a pumpkin patch, a snowman,
            christmas decorations, easter eggs, a spring picnic, a summer festival,
            winter holidays, a frozen lake in winter"""),
            ("a scene of {x}", "image with {x}"),
        ),
    ),
    extras=_split("""Blossoming springtime blooms, Colorful autumn trees, A summer beach day,
    Children building a snowman, The changing of the seasons"""),
    keywords=_split("""season, seasons, seasonal, springtime, summertime, wintertime, fall,
    autumnal, wintry, harvest, christmas, easter, halloween, snowman, foliage season"""),
)

SPORTS = FamilyVocab(
    "sports",
    groups=(
        Group(
            _split("""soccer, basketball, tennis, baseball, american football, rugby, golf,
            volleyball, ice hockey, boxing, wrestling, swimming, diving, surfing, skiing,
            snowboarding, skateboarding, cycling, running, marathon running, gymnastics,
            figure skating, fencing, archery, rowing, rock climbing, horse racing, motorsport,
            table tennis, badminton, cricket, karate, judo, yoga, weightlifting, bowling,
            water polo, sprinting, kickboxing, handball"""),
            (
                "{x} training session",
                "athletes competing in {x}",
                "an action shot of {x}",
                "someone practicing {x}",
                "{a} competition",
            ),
        ),
        Group(
            _split("""soccer ball, tennis racket, baseball bat, golf club, hockey stick,
            surfboard, skateboard, basketball hoop, boxing glove, dumbbell,
            running track, swimming pool, boxing ring, tennis court, ski slope"""),
            ("a photo of {a}", "image with {a}"),
            countable=True,
        ),
    ),
    extras=_split("""thrilling motorsport race, A stadium full of fans, A goalkeeper diving for
    the ball, A runner crossing the finish line, A team celebrating a victory, A basketball
    player dunking, A surfer riding a big wave, A cyclist racing downhill"""),
    keywords=_split("""sport, sports, athlete, athletes, game, match, team, stadium, player,
    players, competition, race, racing, ball, training, tournament, olympics, goalkeeper,
    coach, league, fans, championship, workout, fitness, runner, surfer, cyclist,
    finish line"""),
)

MUSIC = FamilyVocab(
    "music",
    groups=(
        Group(
            _split("""guitar, electric guitar, piano, violin, cello, drum kit, trumpet,
            saxophone, flute, clarinet, harp, accordion, banjo, ukulele, harmonica, xylophone,
            tuba, trombone, sitar, synthesizer, microphone, turntable, double bass, tambourine,
            french horn, pipe organ, grand piano, bass guitar, mandolin, didgeridoo"""),
            (
                "{a} in a music shop",
                "someone playing {a}",
                "close-up of {a}",
                "{a} on a stage",
                "a vintage {x}",
            ),
            countable=True,
        ),
        Group(
            _split("""a rock concert, an orchestra, a jazz band, a choir, sheet music,
            a music festival, a DJ set, a recording studio, an opera performance,
            a marching band, vinyl records, a string quartet, a street musician,
            a piano recital"""),
            ("a view of {x}", "image with {x}"),
        ),
    ),
    extras=_split("""People dancing at a concert, A singer on stage, Musical notes on a page,
    Headphones and a music player, A guitarist tuning strings, Fans at a music festival"""),
    keywords=_split("""music, musical, musician, musicians, instrument, instruments, concert,
    song, songs, band, melody, singing, singer, guitarist, pianist, orchestra, notes, dj,
    headphones, rhythm, drums, jazz, opera, symphony"""),
)

ARCHITECTURE = FamilyVocab(
    "architecture",
    groups=(
        Group(
            _split("""gothic cathedral, skyscraper, castle, mosque, temple, pagoda, lighthouse,
            bridge, windmill, barn, cottage, mansion, apartment block, brutalist building,
            glass facade, stone archway, spiral staircase, dome, palace, church, log cabin,
            farmhouse, villa, greenhouse, train station, modern house, victorian house,
            adobe house, igloo, treehouse, aqueduct, amphitheater, courtyard, balcony, rooftop,
            staircase, doorway, window, fountain, clock tower, office tower, town hall,
            suspension bridge, glass pavilion, ancient ruin"""),
            (
                "a view of {a}",
                "architectural photo of {a}",
                "the facade of {a}",
                "an old {x}",
                "a modern {x}",
                "{a} seen from below",
            ),
            countable=True,
        ),
    ),
    extras=_split("""Inviting reading nook, A cozy living room interior, Ornate ceiling
    details, Rows of columns and arches, A minimalist concrete interior, Ancient ruins of a city,
    A hallway with high ceilings, Tiled rooftops of an old town"""),
    keywords=_split("""architecture, architectural, building, buildings, house, houses, facade,
    structure, interior, roof, rooftops, ceiling, columns, arches, ruins, tower, hallway,
    room, construction, nook"""),
)

PATTERNS = FamilyVocab(
    "patterns",
    groups=(
        Group(
            _split("""striped, polka dot, checkered, plaid, houndstooth, chevron, paisley,
            floral, herringbone, zigzag, argyle, leopard-spot, zebra-stripe, camouflage,
            tie-dye, hexagonal tile, honeycomb, fractal, moire, swirling, mandala, damask,
            gingham, tartan, pinstripe, tiled, kaleidoscope, wavy, lattice, crosshatch,
            harlequin, repeating, ikat, batik, quatrefoil, greek key, chequered tile, dotted"""),
            (
                "a fabric with {a} pattern",
                "image with {a} pattern",
                "{a} pattern on a wall",
                "a seamless {x} pattern",
                "a shirt with {a} design",
            ),
        ),
    ),
    extras=_split("""Image with leopard print patterns, Repeating patterns of tiles,
    Symmetrical ornamental motifs, An optical illusion pattern, Concentric ripples,
    A quilt with a patchwork design"""),
    keywords=_split("""pattern, patterns, patterned, print, prints, motif, motifs, symmetry,
    symmetrical, ornamental, stripes, dots, checks, patchwork, tessellation, concentric,
    ripples"""),
)

SHAPES = FamilyVocab(
    "shapes",
    groups=(
        Group(
            _split("""circle, square, triangle, rectangle, hexagon, pentagon, octagon, star,
            heart, crescent, oval, rhombus, sphere, cube, cone, cylinder, spiral, arrow,
            cross, ring, arc, torus, prism, polygon, ellipse, trapezoid, parallelogram,
            semicircle, pyramid, diamond"""),
            (
                "{a} shape",
                "a drawing of {a}",
                "simple geometric {x}",
                "an object shaped like {a}",
                "{a} drawn on paper",
                "the outline of {a}",
            ),
            countable=True,
        ),
    ),
    extras=_split("""Basic geometric shapes, Circles and squares on paper, Overlapping
    triangles, A round object, Angular forms, Curved lines"""),
    keywords=_split("""shape, shapes, shaped, geometry, geometric, round, circular, triangular,
    rectangular, angular, curved, outline, forms, lines"""),
)

PHOTOGRAPHY = FamilyVocab(
    "photography",
    groups=(
        Group(
            _split("""black and white, sepia, long exposure, macro, aerial, panoramic, fisheye,
            tilt-shift, bokeh, blurry, motion blur, double exposure, HDR, film grain, polaroid,
            vintage, overexposed, underexposed, high contrast, low angle, bird's-eye view,
            wide-angle, telephoto, candid, documentary, infrared, time-lapse, pinhole,
            lomography, cinematic, soft focus, shallow depth of field, drone"""),
            (
                "{a} photograph",
                "{x} photography",
                "{a} shot of a city street",
                "an example of {x} photography",
                "{a} picture of a park",
            ),
        ),
    ),
    extras=_split("""A selfie taken with a phone, A snapshot from a family album, An old
    photograph with faded colors, A professional studio photo shoot, Photographer's point of
    view, A photo with strong vignetting, Minimalist white backdrop"""),
    keywords=_split("""photograph, photographs, photography, photographer's, camera, lens, exposure, focus, selfie, snapshot, film, vignetting, photo shoot, depth
    of field, backdrop"""),
)

CLOTHING = FamilyVocab(
    "clothing",
    groups=(
        Group(
            _split("""dress, suit, jacket, hoodie, t-shirt, scarf, sweater, raincoat, kimono,
            sari, tuxedo, wedding dress, coat, skirt, blouse, cardigan, overcoat, evening gown,
            leather jacket, denim jacket, baseball cap, top hat, straw hat, beanie, bow tie,
            necktie, apron, bathrobe, swimsuit, poncho, vest, turban, headscarf, tracksuit"""),
            (
                "{a} in a shop window",
                "a person wearing {a}",
                "{a} on a hanger",
                "a fashionable {x}",
                "a model in {a}",
            ),
            countable=True,
        ),
        Group(
            _split("""jeans, sneakers, boots, sandals, high heels, sunglasses, gloves,
            pajamas, shorts, socks"""),
            ("a pair of {x}", "a photo of {x}", "someone wearing {x}"),
        ),
    ),
    extras=_split("""Urban street fashion, A fashion runway show, A wardrobe full of clothes,
    Traditional costumes, A clothing store display, Matching outfits"""),
    keywords=_split("""clothing, clothes, fashion, outfit, outfits, garment, garments, wearing,
    dressed, costume, costumes, wardrobe, runway, apparel, hat, hats, shoes, accessories"""),
)

EVENTS = FamilyVocab(
    "events",
    groups=(
        Group(
            _split("""wedding, birthday party, parade, festival, graduation ceremony,
            protest march, fireworks display, carnival, funeral, picnic in the park,
            conference, street festival, award ceremony, baby shower, barbecue party,
            New Year's Eve party, religious procession, book fair, county fair, farmers market,
            flea market, dinner party, tea ceremony, costume party, candlelight vigil,
            school play, business meeting, press conference, family reunion, housewarming party,
            charity run, lantern festival, dance party, wedding reception, job fair"""),
            (
                "a moment from {a}",
                "people at {a}",
                "a scene from {a}",
                "decorations for {a}",
                "photo taken at {a}",
            ),
            countable=True,
        ),
    ),
    extras=_split("""colorful procession, A crowd celebrating, Confetti falling at a
    celebration, Balloons and streamers at a party, Guests raising a toast, A ribbon cutting
    ceremony"""),
    keywords=_split("""event, events, celebration, celebrations, celebrating, party, parties,
    ceremony, ceremonies, gathering, occasion, holiday, festivities, confetti, guests, toast,
    procession, fair"""),
)

FAMILY_VOCABS: tuple[FamilyVocab, ...] = (
    PEOPLE,
    ANIMALS,
    NATURE,
    LOCATIONS,
    COLORS,
    TEXTURES,
    MATERIALS,
    OBJECTS,
    LETTERS,
    BODY_PARTS,
    PROFESSIONS,
    FOOD,
    VEHICLES,
    ART_STYLES,
    LIGHTING,
    NUMBERS,
    EMOTIONS,
    WEATHER,
    SEASONS,
    SPORTS,
    MUSIC,
    ARCHITECTURE,
    PATTERNS,
    SHAPES,
    PHOTOGRAPHY,
    CLOTHING,
    EVENTS,
)
