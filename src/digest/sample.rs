//! The built-in sample issue: what `check` renders the templates against when the articles
//! folder cannot be read, and the issue the tests and benchmarks render.
//!
//! It is built by hand (no files, no loader): twelve articles over three sections, with the
//! awkward cases a digest must survive (an `&` and quotes in a title, non-ASCII names,
//! several authors, news items without a byline). Everything is deterministic.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::articles::{Article, Issue};
use crate::base::IssueDate;

struct Spec {
    title: &'static str,
    section: Option<&'static str>,
    authors: &'static [&'static str],
    day: u32,
    slug: &'static str,
    read_count: Option<u64>,
    paragraphs: &'static [&'static str],
}

const SPECS: &[Spec] = &[
    Spec {
        title: "Georgia Weighs the Cost of Guarding the Pipeline Corridor",
        section: Some("Analytical Articles"),
        authors: &["Nino Kharadze"],
        day: 20,
        slug: "georgia-pipeline-security",
        read_count: Some(2311),
        paragraphs: &[
            "BACKGROUND: The construction of the Baku-Tbilisi-Ceyhan oil pipeline has moved from the drawing board to the survey stage, and with it the question of who will protect roughly 250 kilometers of steel running through Georgian territory.",
            "IMPLICATIONS: The financing gap creates an opening for the consortium partners to take on part of the burden, which some Georgian officials view as a welcome relief and others as an erosion of sovereignty.",
            "CONCLUSIONS: The debate over the protection force is a test of whether Georgia can turn transit revenue into state capacity.",
        ],
    },
    Spec {
        title: "Manas Air Base Opens a New Chapter for Kyrgyzstan",
        section: Some("Analytical Articles"),
        authors: &["Aida Bekova"],
        day: 14,
        slug: "manas-air-base",
        read_count: Some(1804),
        paragraphs: &[
            "The arrival of coalition aircraft at Manas airport near Bishkek has changed the economic and political calculus of Kyrgyzstan in a matter of weeks.",
            "Landing fees, fuel contracts and local hiring are expected to bring the country more foreign currency this year than several of its traditional exports combined.",
            "Critics in parliament ask what happens to these revenues, and to the relationship with Moscow, once the campaign winds down.",
        ],
    },
    Spec {
        title: "Caspian Delimitation: \"Median Line\" Talks & Their Limits",
        section: Some("Analytical Articles"),
        authors: &["Elnur Məmmədov", "Sergei Volkov"],
        day: 18,
        slug: "caspian-median-line",
        read_count: Some(977),
        paragraphs: &[
            "Azerbaijan, Kazakhstan and Russia have moved closer to a bilateral formula for dividing the Caspian seabed, leaving Iran and Turkmenistan to argue for a condominium that few now expect.",
            "The modified median line favours the states with the longest coastlines, and it allows the oil companies already at work to keep their licences intact.",
            "Without an agreement on the surface waters, however, the question of military navigation remains open, and with it the risk of incidents like the one near the Alov field last summer.",
        ],
    },
    Spec {
        title: "Uzbekistan's Currency Reform Stalls at the Border Markets",
        section: Some("Analytical Articles"),
        authors: &["Timur Rakhimov"],
        day: 21,
        slug: "uzbek-currency-reform",
        read_count: None,
        paragraphs: &[
            "Tashkent's promise to unify its exchange rates by the summer depends on traders in the Ferghana valley, who have learned to live with three prices for the same dollar.",
            "The central bank has narrowed the gap between the official and the commercial rate, but the bazaar rate still runs almost twice as high.",
            "An IMF programme would bring fresh credit, yet it would also demand that the government let go of the cotton and grain procurement that finances the state budget.",
        ],
    },
    Spec {
        title: "Turkmen Gas Looks South Again",
        section: Some("Analytical Articles"),
        authors: &["Ogulgerek Annayeva"],
        day: 22,
        slug: "turkmen-gas-south",
        read_count: Some(640),
        paragraphs: &[
            "The trans-Afghan pipeline, shelved during the years of war, is back on the agenda in Ashgabat, Kabul and Islamabad.",
            "Investors remain cautious: the route crosses provinces where the new government's writ barely runs, and India's participation is far from certain.",
        ],
    },
    Spec {
        title: "Kazakhstan's Grain Harvest Tests Its Export Routes",
        section: Some("Field Reports"),
        authors: &["Daniyar Seitkali"],
        day: 14,
        slug: "kazakhstan-grain",
        read_count: Some(1203),
        paragraphs: &[
            "A record harvest has left elevators across the northern oblasts full and railway wagons in short supply.",
            "Traders are pressing for access to Iranian ports through Turkmenistan, a route that would cut the cost of reaching Gulf buyers by a third.",
        ],
    },
    Spec {
        title: "Partnership for Peace Comes to the Steppe",
        section: Some("Field Reports"),
        authors: &["Gulnara Ismailova"],
        day: 19,
        slug: "nato-pfp-steppe",
        read_count: Some(4474),
        paragraphs: &[
            "At the beginning of 1992, NATO officials could hardly have imagined that their exercises would one day be staged on the Kazakh steppe.",
            "The Steppe Eagle drills brought together battalions from Kazakhstan, Kyrgyzstan and Uzbekistan with instructors from Britain and the United States.",
        ],
    },
    Spec {
        title: "Dushanbe's Markets After the Winter",
        section: Some("Field Reports"),
        authors: &["Фарида Назарова"],
        day: 23,
        slug: "dushanbe-markets",
        read_count: None,
        paragraphs: &[
            "The Barakat bazaar is busier than at any time since the civil war, and prices for flour and cooking oil have finally stopped rising.",
            "Remittances from Russia keep many households afloat; a new bank transfer service has cut the fees migrants pay by half.",
        ],
    },
    Spec {
        title: "Baku Hosts the First Regional Energy Fair",
        section: Some("Field Reports"),
        authors: &["Leyla Əliyeva"],
        day: 25,
        slug: "baku-energy-fair",
        read_count: Some(312),
        paragraphs: &[
            "More than two hundred companies set up stands at the exhibition centre on the boulevard, from drilling contractors to caterers.",
            "The mood was optimistic, though several local firms complained that the large contracts still go to foreign partners.",
        ],
    },
    Spec {
        title: "Tajikistan and China to Study the Kulma Pass Road",
        section: Some("News Digest"),
        authors: &[],
        day: 25,
        slug: "tajik-roads",
        read_count: Some(402),
        paragraphs: &[
            "Tajikistan and China have agreed to study a road link across the Kulma pass, a project that would give the Gorno-Badakhshan region its first direct trade route to Xinjiang.",
            "The two governments also discussed the demarcation of the remaining disputed sections of their border.",
        ],
    },
    Spec {
        title: "Armenia Announces a New Round of Privatisation",
        section: Some("News Digest"),
        authors: &[],
        day: 26,
        slug: "armenia-privatisation",
        read_count: Some(150),
        paragraphs: &[
            "The government in Yerevan will offer stakes in the electricity distribution network and in two mining companies before the end of the year.",
        ],
    },
    Spec {
        title: "Kyrgyz Parliament Debates the Border Treaty",
        section: Some("News Digest"),
        authors: &[],
        day: 26,
        slug: "kyrgyz-border-treaty",
        read_count: None,
        paragraphs: &[
            "Deputies in Bishkek opened hearings on the border treaty with China, which opposition members say cedes too much land in the Uzengi-Kuush area.",
        ],
    },
];

/// One article of the sample issue.
fn article(s: &Spec) -> Article {
    let paragraphs: Vec<String> = s.paragraphs.iter().map(|p| p.to_string()).collect();
    let body_html = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>", crate::base::escape_html(p)))
        .collect::<Vec<_>>()
        .join("\n");
    let word_count = paragraphs
        .iter()
        .map(|p| p.split_whitespace().count())
        .sum();
    Article {
        file: PathBuf::from(format!("{}.txt", s.slug)),
        title: s.title.to_string(),
        title_is_fallback: false,
        authors: s.authors.iter().map(|a| a.to_string()).collect(),
        section: s.section.map(str::to_string),
        date: NaiveDate::from_ymd_opt(2002, 2, s.day).expect("a valid sample date"),
        issue: issue_date(),
        url: format!("https://analyst.example.org/articles/{}", s.slug),
        summary: None,
        lead: paragraphs[0].clone(),
        paragraphs,
        body_html,
        read_count: s.read_count,
        word_count,
    }
}

fn issue_date() -> IssueDate {
    IssueDate::new(NaiveDate::from_ymd_opt(2002, 2, 27).expect("a valid sample date"))
}

/// The twelve-article sample issue of 27 February 2002.
pub fn sample_issue() -> Issue {
    Issue {
        date: issue_date(),
        articles: SPECS.iter().map(article).collect(),
    }
}
