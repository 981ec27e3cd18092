"""A deterministic synthetic city in the contract's GeoJSON, from a demo town to Changzhou.

Districts are blocks, streets are columns of a block, communities are rows of a street,
and each community is cut into comprehensive grids. Special grids (a school, a park, a
hospital, a business district) sit inside comprehensive grids. One cell is left as a lake
that belongs to no grid; its centre is listed under "gridline:gaps".
"""

from __future__ import annotations

import math
import random
from typing import Any

PRESETS: dict[str, dict[str, int]] = {
    "demo": {
        "districts": 1,
        "streets": 4,
        "communities_per_street": 4,
        "grids": 120,
        "special": 12,
    },
    "changzhou": {
        "districts": 6,
        "streets": 62,
        "communities_per_street": 16,
        "grids": 7151,
        "special": 1566,
    },
}

DISTRICTS = [
    ("320402", "天宁区"),
    ("320404", "钟楼区"),
    ("320411", "新北区"),
    ("320412", "武进区"),
    ("320413", "金坛区"),
    ("320481", "溧阳市"),
    ("320405", "戚墅堰区"),
    ("320406", "经开区"),
]
STREET_NAMES = [
    "青龙",
    "红梅",
    "雕庄",
    "茶山",
    "兰陵",
    "丽华",
    "天宁",
    "湖塘",
    "南夏墅",
    "邹区",
    "薛家",
    "罗溪",
    "河海",
    "三井",
    "龙虎塘",
    "春江",
    "孟河",
    "西夏墅",
    "奔牛",
    "新桥",
    "永红",
    "北港",
    "西林",
    "南大街",
    "荷花池",
    "五星",
    "新闸",
    "牛塘",
    "礼嘉",
    "洛阳",
    "遥观",
    "横林",
    "横山桥",
    "郑陆",
    "潞城",
    "戚墅堰",
]
COMMUNITY_WORDS = [
    "东",
    "西",
    "南",
    "北",
    "中",
    "新村",
    "花园",
    "景苑",
    "和平",
    "安居",
    "桃园",
    "翠竹",
    "阳光",
    "清潭",
    "丽景",
    "锦绣",
]
SPECIAL_KINDS = [
    ("school", "第{n}中学专属网格"),
    ("park", "{base}公园专属网格"),
    ("hospital", "{base}人民医院专属网格"),
    ("business", "{base}商圈专属网格"),
]

STREET_WIDTH = 0.03  # degrees of longitude per street column
COMMUNITY_HEIGHT = 0.02  # degrees of latitude per community row


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` positive counts that differ by at most a few."""
    base = [total // parts] * parts
    for i in rng.sample(range(parts), total % parts):
        base[i] += 1
    for _ in range(parts):  # shuffle some weight around so sizes vary
        a, b = rng.randrange(parts), rng.randrange(parts)
        if base[a] > 2:
            base[a] -= 1
            base[b] += 1
    return base


def _rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    ring = [
        [round(x0, 7), round(y0, 7)],
        [round(x1, 7), round(y0, 7)],
        [round(x1, 7), round(y1, 7)],
        [round(x0, 7), round(y1, 7)],
        [round(x0, 7), round(y0, 7)],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def _street_name(i: int) -> str:
    base = STREET_NAMES[i % len(STREET_NAMES)]
    return f"{base}街道" if i < len(STREET_NAMES) else f"{base}{i // len(STREET_NAMES) + 1}街道"


def generate_city(
    seed: int,
    *,
    districts: int = 1,
    streets: int = 4,
    communities_per_street: int = 4,
    grids: int = 120,
    special: int | None = None,
    origin: tuple[float, float] = (119.90, 31.72),
) -> dict[str, Any]:
    if not 1 <= districts <= len(DISTRICTS):
        raise ValueError(f"districts must be 1..{len(DISTRICTS)}")
    if streets < districts or communities_per_street < 1:
        raise ValueError("need at least one street per district and one community per street")
    rng = random.Random(seed)
    specials = round(grids * 0.1) if special is None else special
    communities = streets * communities_per_street
    comprehensive = grids - specials
    if comprehensive < communities or specials > comprehensive:
        raise ValueError("too few grids for that many communities (or too many special grids)")

    streets_per_district = _split(streets, districts, rng) if districts > 1 else [streets]
    cols = math.ceil(math.sqrt(districts))
    # One extra cell becomes the lake: a gap inside the city that belongs to no grid.
    cells = _split(comprehensive + 1, communities, rng)
    features: list[dict[str, Any]] = []
    gaps: list[list[float]] = []
    comprehensive_cells: list[tuple[dict[str, str], tuple[float, float, float, float]]] = []
    block_width = max(streets_per_district) * STREET_WIDTH
    block_height = communities_per_street * COMMUNITY_HEIGHT
    street_no = 0
    community_no = 0
    lake_street = (min(1, streets_per_district[0] - 1), min(1, communities_per_street - 1))
    for d in range(districts):
        district_id, district_name = DISTRICTS[d]
        bx = origin[0] + (d % cols) * block_width
        by = origin[1] + (d // cols) * block_height
        for s in range(streets_per_district[d]):
            street_id = f"{district_id}{s + 1:03d}"
            street_name = _street_name(street_no)
            street_base = street_name.removesuffix("街道")
            street_no += 1
            for c in range(communities_per_street):
                community_id = f"{street_id}{c + 1:03d}"
                community_name = f"{street_base}{COMMUNITY_WORDS[c % len(COMMUNITY_WORDS)]}社区"
                if c >= len(COMMUNITY_WORDS):
                    community_name = f"{street_base}{COMMUNITY_WORDS[c % len(COMMUNITY_WORDS)]}{c // len(COMMUNITY_WORDS) + 1}社区"
                n = cells[community_no]
                community_no += 1
                x0 = bx + s * STREET_WIDTH
                y0 = by + c * COMMUNITY_HEIGHT
                width = STREET_WIDTH / n
                lake_here = d == 0 and (s, c) == lake_street and n > 1
                lake_cell = n // 2 if lake_here else -1
                k = 0
                for i in range(n):
                    box = (x0 + i * width, y0, x0 + (i + 1) * width, y0 + COMMUNITY_HEIGHT)
                    if i == lake_cell:
                        gaps.append(
                            [round((box[0] + box[2]) / 2, 7), round((box[1] + box[3]) / 2, 7)]
                        )
                        continue
                    k += 1
                    props = {
                        "grid_id": f"{community_id}{k:03d}",
                        "grid_name": f"{community_name}第{k}网格",
                        "grid_kind": "comprehensive",
                        "community_id": community_id,
                        "community_name": community_name,
                        "street_id": street_id,
                        "street_name": street_name,
                        "district_id": district_id,
                        "district_name": district_name,
                    }
                    features.append(
                        {"type": "Feature", "properties": props, "geometry": _rect(*box)}
                    )
                    comprehensive_cells.append((props, box))
    if not gaps:  # every community had one cell: take a grid out of the middle instead
        props, box = comprehensive_cells.pop(len(comprehensive_cells) // 2)
        features = [f for f in features if f["properties"]["grid_id"] != props["grid_id"]]
        gaps.append([round((box[0] + box[2]) / 2, 7), round((box[1] + box[3]) / 2, 7)])
    per_community: dict[str, int] = {}
    for n, (props, box) in enumerate(
        sorted(rng.sample(comprehensive_cells, specials), key=lambda pb: pb[0]["grid_id"])
    ):
        x0, y0, x1, y1 = box
        mx, my = (x1 - x0) * 0.3, (y1 - y0) * 0.3
        kind, pattern = SPECIAL_KINDS[n % len(SPECIAL_KINDS)]
        base = props["community_name"].removesuffix("社区")
        k = per_community.get(props["community_id"], 0) + 1
        per_community[props["community_id"]] = k
        features.append(
            {
                "type": "Feature",
                "properties": {
                    **props,
                    "grid_id": f"{props['community_id']}{900 + k:03d}",
                    "grid_name": pattern.format(n=n + 1, base=base),
                    "grid_kind": "special",
                    "gridline:special_kind": kind,
                },
                "geometry": _rect(x0 + mx, y0 + my, x1 - mx, y1 - my),
            }
        )
    return {"type": "FeatureCollection", "gridline:gaps": gaps, "features": features}
